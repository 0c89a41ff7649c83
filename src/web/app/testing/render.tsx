/** Renders a component the way the console does: inside Mantine with the console's theme. */
import { MantineProvider } from '@mantine/core';
import { render } from '@testing-library/react';
import type { ReactElement } from 'react';
import { colorSchemeManager, theme } from '../theme';

export function renderInConsole(ui: ReactElement) {
  return render(
    <MantineProvider theme={theme} colorSchemeManager={colorSchemeManager} defaultColorScheme="auto" env="test">
      {ui}
    </MantineProvider>,
  );
}
