import { isAlias, isCollection, isScalar, type Scalar } from "yaml";
import { type FieldSegment, parseFieldPath } from "../../common/field-path.ts";
import {
  assertNotAliased,
  describeMissing,
  inFlow,
  type Located,
  locate,
  type Source,
  scalarText,
} from "./document.ts";
import { type EditOp, keptType } from "./ops.ts";
import { Refusal } from "./refusal.ts";

/** Parses a target's path or refuses naming it (the config check reports the same at load). */
export function segmentsOf(source: Source, path: string, option: string): FieldSegment[] {
  const parsed = parseFieldPath(path);
  if (!parsed.ok) {
    throw new Refusal(
      "gitops_path_missing",
      `${source.file}: the target's ${option} ${JSON.stringify(path)} is not a valid path: ${parsed.message}; fix it in the config`,
    );
  }
  return parsed.segments;
}

/** Follows a path that must exist, refusing with a message that says where it stopped. */
export function locateOrRefuse(source: Source, doc: number, path: string, option: string): Located {
  const segments = segmentsOf(source, path, option);
  const found = locate(source, doc, segments, path);
  if ("missing" in found)
    throw new Refusal("gitops_path_missing", describeMissing(source, segments, found, path));
  return found;
}

/** Like {@link locateOrRefuse}, but an absent path is undefined (an optional value). */
export function locateOptional(
  source: Source,
  doc: number,
  path: string,
  option: string,
): Located | undefined {
  const segments = segmentsOf(source, path, option);
  const found = locate(source, doc, segments, path);
  if (!("missing" in found)) return found;
  if (found.reason === "absent") return undefined;
  throw new Refusal("gitops_path_missing", describeMissing(source, segments, found, path));
}

/** The scalar a path leads to; a map, list or alias there is refused (Ferry writes one value). */
export function scalarAt(source: Source, located: Located, label: string): Scalar {
  const node = located.node;
  if (isScalar(node)) return node;
  const what = isAlias(node)
    ? "an alias"
    : isCollection(node)
      ? node.flow
        ? "a flow collection"
        : "a map or list"
      : "empty";
  throw new Refusal(
    "gitops_unsafe_edit",
    `${source.file}: ${label} is ${what}, not a scalar; point the target at the scalar that holds the value`,
  );
}

/** The text a path holds, when it is a scalar; `""` and null read as nothing. */
export function textAt(located: Located | undefined): string | undefined {
  const text = scalarText(located?.node);
  return text === "" ? undefined : text;
}

/** A `set` op writing `value` into the scalar at `located`, or nothing when it already holds it. */
export function setOp(source: Source, doc: number, located: Located, value: string, label: string): EditOp[] {
  const node = scalarAt(source, located, label);
  if (node.value === value) return [];
  if (value !== "" && node.value !== null && typeof node.value !== "string") {
    // A number or boolean there means the path points at something else than an image.
    throw new Refusal(
      "gitops_unsafe_edit",
      `${source.file}: ${label} holds the ${typeof node.value} ${String(node.value)}, not an image reference or digest; fix the path in the target`,
    );
  }
  assertNotAliased(source, doc, located, label);
  return [
    {
      op: "set",
      doc,
      indices: located.indices,
      node,
      value,
      type: keptType(node, value),
      inFlow: inFlow(located),
      label,
    },
  ];
}
