import { INTAKE, STAGES, type Start } from '../run/graph.js';

/**
 * Step Functions state transitions of a successful run without retries, counted from the stage graph: a Standard
 * workflow bills every state entered (a retry is another). Entered are the intake states of how the run was started
 * (an upload's own execution included: it is billed too), then per stage its task, or for a fan-out its Map state
 * plus the task of every item. An Inline Map's iterations themselves are not billed, only the states they enter.
 */
export function estimateStateTransitions(shards: number, features: number, start: Start): number {
  const items = { shardKeys: shards, features };
  let entered = INTAKE[start].reduce((n, execution) => n + execution.length, 0);
  for (const { fanOut } of STAGES) entered += fanOut.each === 'run' ? 1 : 1 + items[fanOut.items];
  return entered;
}
