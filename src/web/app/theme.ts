/**
 * The console's look: Mantine's theme, and where the chosen colour scheme is remembered.
 * `auto` (the default) follows the system's prefers-color-scheme; the toggle stores an
 * explicit light or dark choice in localStorage under {@link COLOR_SCHEME_KEY}.
 */
import { createTheme, localStorageColorSchemeManager, type CSSVariablesResolver } from '@mantine/core';

export const COLOR_SCHEME_KEY = 'coffer-color-scheme';

export const colorSchemeManager = localStorageColorSchemeManager({ key: COLOR_SCHEME_KEY });

export const theme = createTheme({
  // Shade 8 of blue on white and white on it pass WCAG AA (4.5:1); autoContrast picks the
  // text colour of filled controls by their background. Checked by axe-core in the e2e test.
  primaryColor: 'blue',
  primaryShade: { light: 8, dark: 8 },
  autoContrast: true,
  // The system's own fonts: nothing is fetched at run time.
  fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif',
  fontFamilyMonospace: 'ui-monospace, "DejaVu Sans Mono", monospace',
  defaultRadius: 'sm',
  components: {
    // A badge keeps its whole word: a squeezed table column or a long text beside it in a row
    // cut "succeeded" to "SUCCE…" (tasks, audit log, the dashboard's last night). The e2e test
    // checks every page for a cut badge.
    Badge: { styles: { root: { minWidth: 'max-content', flexShrink: 0 } } },
  },
});

/**
 * Mantine's "dimmed" text (gray 6 on white, 3.3:1) fails WCAG AA for small text: one shade
 * darker in light, lighter in dark, so hints and captions stay readable (axe-core checks it).
 */
export const cssVariablesResolver: CSSVariablesResolver = (current) => ({
  variables: {},
  light: {
    '--mantine-color-dimmed': 'var(--mantine-color-gray-7)',
    // "light" variants (badges, alerts, the active link): shade 9 text on shade 0, not 1 (and 1,
    // not 2, when hovered), which keeps 4.5:1 for every colour the console uses. Orange and
    // yellow stay below it whatever the shades: the console does not use them for text.
    ...Object.fromEntries(
      Object.keys(current.colors).flatMap((color) => [
        [`--mantine-color-${color}-light`, `var(--mantine-color-${color}-0)`],
        [`--mantine-color-${color}-light-hover`, `var(--mantine-color-${color}-1)`],
      ]),
    ),
  },
  dark: { '--mantine-color-dimmed': 'var(--mantine-color-dark-1)' },
});
