/** Renders a component the way the console does: inside Mantine with the console's theme (kept on a rerender). */
import { MantineProvider } from '@mantine/core';
import { render } from '@testing-library/react';
import type { ReactElement, ReactNode } from 'react';
import { colorSchemeManager, cssVariablesResolver, theme } from '../theme';

function InConsole({ children }: { children: ReactNode }) {
  return (
    <MantineProvider theme={theme} colorSchemeManager={colorSchemeManager} cssVariablesResolver={cssVariablesResolver} defaultColorScheme="auto" env="test">
      {children}
    </MantineProvider>
  );
}

export function renderInConsole(ui: ReactElement) {
  return render(ui, { wrapper: InConsole });
}
