// Preloaded into a trainer process by the IAM conformance test (NODE_OPTIONS, see callLogEnvironment): appends each
// AWS call the process makes to the file TEXTSHIFT_TEST_AWS_CALL_LOG names, one JSON line per call, synchronously,
// so the calls of a process that fails or exits early are kept too.
import { appendFileSync } from 'node:fs';
import { observeAwsCalls } from '../../../src/store/aws-calls.js';
import { CALL_LOG_ENV, callRecord } from './aws-call-recorder.js';

const file = process.env[CALL_LOG_ENV];
if (file) {
  observeAwsCalls((call) => appendFileSync(file, `${JSON.stringify(callRecord(call))}\n`));
}
