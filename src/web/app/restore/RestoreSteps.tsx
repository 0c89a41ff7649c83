/**
 * The restore wizard's step header: the four steps, each done one showing what was chosen and
 * reachable by a click (to choose again), the current one highlighted. Drawn from the state
 * alone (wizard.ts), so it is tested without a server.
 */
import { Stepper } from '@mantine/core';
import { currentStep, STEP_LABELS, stepSummaries, type WizardState } from './wizard';

export function RestoreSteps({ state, snapshotTime, onBack }: { state: WizardState; snapshotTime?: string | undefined; onBack: (step: number) => void }) {
  const active = currentStep(state);
  const summaries = stepSummaries(state, snapshotTime);
  return (
    <Stepper active={active} onStepClick={(step) => step < active && onBack(step)} size="sm" mb="md" aria-label="Restore steps">
      {STEP_LABELS.map((label, i) => (
        <Stepper.Step key={label} label={label} description={summaries[i] || undefined} allowStepSelect={i < active} />
      ))}
    </Stepper>
  );
}
