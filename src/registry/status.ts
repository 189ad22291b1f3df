import { z } from "zod";
import { FerryError } from "../common/errors.ts";
import type { HttpResponse } from "./http.ts";

// The distribution spec's error body: {"errors":[{"code":"MANIFEST_UNKNOWN","message":"…"}]}.
const errorBody = z.object({
  errors: z.array(z.object({ code: z.string(), message: z.string().optional() })).min(1),
});

/**
 * Turns an unexpected registry answer into a `FerryError`: 404 is `not_found`; 401/403 are
 * `upstream_denied` (final: the credentials or access were refused, without echoing anything
 * secret); anything else is `upstream_failed` (retryable: a 5xx still failing after the client's
 * retries) with the registry's own error code, which is safe to show and useful to read. The status
 * also goes to the log as `detail`.
 */
export async function statusError(res: HttpResponse, where: string): Promise<FerryError> {
  let detail = "";
  try {
    const parsed = errorBody.safeParse(JSON.parse(new TextDecoder().decode(await res.bytes(16 * 1024))));
    if (parsed.success) {
      const first = parsed.data.errors[0]!;
      detail = `: ${first.code}${first.message ? ` (${first.message.slice(0, 200)})` : ""}`;
    }
  } catch {
    // No readable error body: the status says enough.
  }
  await res.discard();
  switch (res.status) {
    case 404:
      return new FerryError("not_found", `${where}: not found${detail}`);
    case 401:
      return new FerryError(
        "upstream_denied",
        `${where}: the registry requires credentials it did not accept (HTTP 401); check the registry's \`auth\` in the config`,
        { detail: { upstreamStatus: 401 } },
      );
    case 403:
      return new FerryError("upstream_denied", `${where}: the registry denied access (HTTP 403)${detail}`, {
        detail: { upstreamStatus: 403 },
      });
    default:
      return new FerryError(
        "upstream_failed",
        `${where}: the registry answered HTTP ${res.status}${detail}`,
        {
          detail: { upstreamStatus: res.status },
        },
      );
  }
}
