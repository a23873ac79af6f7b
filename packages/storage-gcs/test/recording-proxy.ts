import {
  jsonErrorAnswer,
  type RecordedRequest,
  type RecordingProxy,
  startRecordingProxy as startHarnessRecordingProxy,
} from "@hoard/test-harness";

export type { RecordedRequest } from "@hoard/test-harness";

/**
 * The harness's recording proxy in front of the emulator: records what was sent, and answers the
 * requests for which `answer` returns a status itself (with a GCS-style JSON error) instead of
 * forwarding them.
 */
export function startRecordingProxy(
  target: string,
  answer: (request: RecordedRequest) => number | undefined = () => undefined,
): Promise<RecordingProxy> {
  return startHarnessRecordingProxy(target, (request) => {
    const status = answer(request);
    return status === undefined ? undefined : jsonErrorAnswer(status);
  });
}
