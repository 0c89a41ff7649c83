/**
 * A wide table's box on a narrow screen: it scrolls sideways, and it is focusable and named so
 * that keyboard users can scroll it too (axe-core's scrollable-region-focusable).
 */
import type { ReactNode } from 'react';

export function HorizontalScroll({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div role="region" aria-label={label} tabIndex={0} style={{ overflowX: 'auto' }}>
      {children}
    </div>
  );
}
