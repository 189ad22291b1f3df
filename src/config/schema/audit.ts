/** `audit`: who reads the audit log, and how often Ferry signs a checkpoint of it (docs/evidence.md). */
import { z } from "zod";
import { duration } from "../duration.ts";
import { d, positiveInt } from "./base.ts";

/** `audit`: readers and checkpoints of the hash-chained audit log. */
export const auditSection = z
  .strictObject({
    readers: z
      .array(z.string().min(1))
      .default([])
      .meta(
        d(
          "Groups (of human issuers' `groupsClaim`) whose members may read the audit log (`GET /v1/audit`); empty: nobody may. The latest checkpoint (`GET /v1/audit/checkpoint`) reveals only a size and a hash, and is public (no token needed).",
        ),
      ),
    checkpoint: z
      .strictObject({
        every: positiveInt
          .default(1000)
          .meta(d("Sign a checkpoint once this many entries were appended since the last one.")),
        interval: duration
          .prefault("5m")
          .meta(d("Also sign one this often, when anything was appended since the last one.")),
      })
      .prefault({})
      .meta(
        d(
          "Signed checkpoints `{origin, size, head, at}` of the chain, whichever of `every` and `interval` comes first.",
        ),
      ),
  })
  .prefault({})
  .meta(d("The hash-chained audit log of every decision: who may read it, how often it is checkpointed."));
