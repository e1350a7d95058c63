/**
 * Shrinks a failing fault schedule (delta debugging, one fault at a time):
 * the smallest schedule found that still fails with the same seed. Runs
 * the simulation once per try, so it is bounded.
 */
import { runSimulation, type Fault, type SimOptions } from './world.ts';

export function shrink(opts: SimOptions, faults: Fault[], maxRuns = 40): Fault[] {
  let current = faults;
  let runs = 0;
  for (let i = 0; i < current.length && runs < maxRuns;) {
    const candidate = current.filter((_, j) => j !== i);
    runs++;
    if (!runSimulation({ ...opts, faults: candidate }).ok) current = candidate;
    else i++;
  }
  return current;
}
