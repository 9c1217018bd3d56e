// The node control plane's commands (identity, onboarding, the node daemon, the reference
// controller), kept apart from cli.ts so each command family reads on its own.
import type { Command } from 'commander';

export function addControlCommands(program: Command): void {
  void program;
}
