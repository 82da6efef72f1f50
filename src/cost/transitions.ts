import { INTAKE, STAGES, batchCount, type Start } from '../run/graph.js';

/** The transition billed for starting one child execution of a Distributed Map. */
const CHILD_EXECUTION_START = 1;

/**
 * Step Functions state transitions of a successful run without retries, counted from the stage graph: a Standard
 * workflow bills every state entered (a retry is another). Entered are the intake states of how the run was started
 * (an upload's own execution included: it is billed too), then per stage its task, or for a fan-out its Map state
 * plus:
 *   - Inline Map: each item's task (the iterations themselves are not billed);
 *   - Distributed Map: per batch of items (a child execution), one transition for starting the child ("Transitions
 *     in Distributed Map state", Step Functions developer guide: each child workflow execution the Distributed Map
 *     starts is charged one state transition) and the child's own Inline Map state; and each item's task, entered in
 *     the child (a Standard child's transitions are billed like any execution's).
 */
export function estimateStateTransitions(shards: number, features: number, start: Start): number {
  const items = { shardPlan: shards, features };
  let entered = INTAKE[start].reduce((n, execution) => n + execution.length, 0);
  for (const { fanOut } of STAGES) {
    if (fanOut.each === 'run') entered += 1;
    else if (fanOut.mode === 'inline') entered += 1 + items[fanOut.items];
    else entered += 1 + childExecutionTransitions(items[fanOut.items]);
  }
  return entered;
}

/**
 * The transitions a Distributed Map's child executions are billed for when it runs `items` items (without retries):
 * per batch, starting its child and the child's Inline Map; per item, its task. None of them are in the parent
 * execution's history.
 */
export function childExecutionTransitions(items: number): number {
  return batchCount(items) * (CHILD_EXECUTION_START + 1) + items;
}

