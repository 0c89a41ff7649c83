/** Renders a component the way the console does: inside Mantine with the console's theme. */
import { MantineProvider } from '@mantine/core';
import { render } from '@testing-library/react';
import type { ReactElement } from 'react';
import { colorSchemeManager, cssVariablesResolver, theme } from '../theme';

export function renderInConsole(ui: ReactElement) {
  return render(
    <MantineProvider theme={theme} colorSchemeManager={colorSchemeManager} cssVariablesResolver={cssVariablesResolver} defaultColorScheme="auto" env="test">
      {ui}
    </MantineProvider>,
  );
}
