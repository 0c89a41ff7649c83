/**
 * The last line: a page that throws while rendering shows what happened and a way on
 * (reload, or back to the dashboard) instead of a blank screen. Reset when the route changes.
 */
import { Button, Group, Stack } from '@mantine/core';
import { Component, type ReactNode } from 'react';
import { ProblemAlert } from './ProblemAlert';

interface Props {
  children: ReactNode;
  /** Changing it clears a caught error (the route's path). */
  resetKey?: string;
}
interface State {
  error: unknown;
  key: string | undefined;
}

export class ErrorBoundary extends Component<Props, State> {
  override state: State = { error: undefined, key: this.props.resetKey };

  static getDerivedStateFromError(error: unknown): Partial<State> {
    return { error };
  }

  static getDerivedStateFromProps(props: Props, state: State): Partial<State> | null {
    return props.resetKey !== state.key ? { error: undefined, key: props.resetKey } : null;
  }

  override render() {
    if (this.state.error === undefined) return this.props.children;
    return (
      <Stack p="md" maw={720}>
        <ProblemAlert error={this.state.error} context="This page failed" />
        <Group>
          <Button variant="light" onClick={() => window.location.reload()}>
            Reload the page
          </Button>
          <Button variant="subtle" component="a" href="/">
            Go to the dashboard
          </Button>
        </Group>
      </Stack>
    );
  }
}
