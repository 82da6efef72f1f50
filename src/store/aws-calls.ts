// Where a test sees every AWS SDK request the product makes (the IAM conformance test checks each against the
// deployment's policies): eslint.config.js refuses a client not built by a factory that makes it observable, and the
// test records at the HTTP layer too. Production installs no observer: a request then costs one check.

/** One AWS SDK request, as its client sent it. */
export interface AwsCall {
  /** The client's class name, e.g. "S3Client". */
  client: string;
  /** The command's class name, e.g. "GetObjectCommand". */
  command: string;
  /** The command input (bucket and key, ARNs, ...). */
  input: Readonly<Record<string, unknown>>;
  /** The error name when the request failed (e.g. "NoSuchKey"). */
  error?: string;
}

/** Receives each AWS call once it has completed. */
export type AwsCallObserver = (call: AwsCall) => void;

type Handler = (args: { input: object }) => Promise<unknown>;

/** The part of an SDK v3 client this module uses: its middleware stack. */
interface ObservableClient {
  middlewareStack: {
    add(
      middleware: (next: Handler, context: { clientName?: string; commandName?: string }) => Handler,
      options: { step: 'initialize'; name: string; override: boolean },
    ): void;
  };
}

let observer: AwsCallObserver | undefined;

/** Installs the process-wide observer of AWS calls, or removes it with undefined (tests only). */
export function observeAwsCalls(next: AwsCallObserver | undefined): void {
  observer = next;
}

/** Adds the observing middleware to an SDK client (again on the same client replaces it); returns the client. */
export function observable<C extends ObservableClient>(client: C): C {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const notify = observer;
      if (!notify) return next(args);
      const call: AwsCall = { client: context.clientName ?? '?', command: context.commandName ?? '?', input: args.input as AwsCall['input'] };
      try {
        return await next(args);
      } catch (err) {
        call.error = err instanceof Error ? err.name : String(err);
        throw err;
      } finally {
        notify(call);
      }
    },
    { step: 'initialize', name: 'textshiftAwsCallObserver', override: true },
  );
  return client;
}
