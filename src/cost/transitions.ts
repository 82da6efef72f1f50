/** Step Functions state transitions of one execution of our state machine (Standard bills each). */
export function estimateStateTransitions(shards: number, features: number): number {
  // Normalize input (2) + Prepare + Map start/end (2) + 2 per shard iteration + Parallel/Map over families (2)
  // + 2 per training job + Report + Succeed.
  return 2 + 1 + 2 + 2 * shards + 2 + 2 * features + 1 + 1;
}
