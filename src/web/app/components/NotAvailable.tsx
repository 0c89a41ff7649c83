/**
 * A part of a page whose API does not exist on this server yet (an older server, or a route
 * still being built): said plainly, never filled with made-up data.
 */
import { Alert, Text } from '@mantine/core';

export function NotAvailable({ what, route }: { what: string; route: string }) {
  return (
    <Alert color="gray" variant="light" title={`${what}: not available on this server`}>
      <Text size="sm">
        This server's API has no <code>{route}</code> yet, so the console cannot show this. It appears here as soon as the server offers it.
      </Text>
    </Alert>
  );
}
