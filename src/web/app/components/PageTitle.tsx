/**
 * A page's heading, which also names the browser tab and takes the keyboard focus after a
 * navigation (so screen-reader and keyboard users land on the new page's content).
 */
import { Group, Title } from '@mantine/core';
import { useEffect, useRef, type ReactNode } from 'react';

export function PageTitle({ children, actions }: { children: string; actions?: ReactNode }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${children} · Coffer`;
    ref.current?.focus({ preventScroll: true });
  }, [children]);
  return (
    <Group justify="space-between" mb="md" wrap="wrap">
      <Title order={1} size="h2" ref={ref} tabIndex={-1} style={{ outline: 'none' }}>
        {children}
      </Title>
      {actions}
    </Group>
  );
}
