/**
 * The console's look: Mantine's theme, and where the chosen colour scheme is remembered.
 * `auto` (the default) follows the system's prefers-color-scheme; the toggle stores an
 * explicit light or dark choice in localStorage under {@link COLOR_SCHEME_KEY}.
 */
import { createTheme, localStorageColorSchemeManager } from '@mantine/core';

export const COLOR_SCHEME_KEY = 'coffer-color-scheme';

export const colorSchemeManager = localStorageColorSchemeManager({ key: COLOR_SCHEME_KEY });

export const theme = createTheme({
  primaryColor: 'teal',
  // The system's own fonts: nothing is fetched at run time.
  fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif',
  fontFamilyMonospace: 'ui-monospace, "DejaVu Sans Mono", monospace',
  defaultRadius: 'sm',
});
