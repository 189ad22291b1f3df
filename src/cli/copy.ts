import type { Command } from "commander";
import { FerryError } from "../common/errors.ts";
import { loadConfigFile } from "../config/load.ts";
import type { FerryConfig } from "../config/schema.ts";
import { createRegistryClient, type RegistryClient } from "../registry/client.ts";
import { assertTagName, type CopyEvent, type CopyResult, copyArtifact } from "../registry/copy.ts";
import { isDigest } from "../registry/digest.ts";
import { LAYOUT_PREFIX, OciLayout } from "../registry/layout.ts";
import type { ArtifactReader, ArtifactWriter } from "../registry/ports.ts";
import { parseDigestReference, parseRepositoryReference } from "../registry/reference.ts";
import { type CliIo, configPath } from "./io.ts";

interface CopyOpts {
  config?: string;
  attachments: boolean;
  quiet?: boolean;
  tag?: string;
}

/** Registers `ferry copy SRC@sha256:… DEST` (registry repositories or `oci-layout:PATH` on either side). */
export function registerCopy(program: Command, io: CliIo): void {
  program
    .command("copy")
    .description(
      "copy an artifact by digest, with its signatures and attestations, to another repository, registry or OCI layout",
    )
    .argument("<source>", "HOST[:PORT]/REPO@sha256:HEX, or oci-layout:PATH@sha256:HEX")
    .argument("<destination>", "HOST[:PORT]/REPO, or oci-layout:PATH (created when missing)")
    .option(
      "-c, --config <file>",
      "path of ferry.yaml, for registries and credentials (default: $FERRY_CONFIG or ./ferry.yaml)",
    )
    .option("--no-attachments", "copy the artifact only, without its signatures, attestations and SBOMs")
    .option("-t, --tag <name>", "also tag the artifact at the destination (an OCI tag such as v1.2.3)")
    .option("-q, --quiet", "print no progress on stderr")
    .action(async (source: string, destination: string, opts: CopyOpts) => {
      // A bad tag is refused before the config is read or any registry is asked.
      if (opts.tag !== undefined) assertTagName(opts.tag);
      const bothLayouts = source.startsWith(LAYOUT_PREFIX) && destination.startsWith(LAYOUT_PREFIX);
      const registries = bothLayouts && opts.config === undefined ? undefined : loadRegistries(opts, io);
      let client: RegistryClient | undefined;
      const registryClient = () => {
        client ??= createRegistryClient(registries ?? { registries: [], registryClient: DEFAULT_CLIENT });
        return client;
      };
      const maxBlobBytes = registries?.registryClient.attestationMaxBytes;
      const [from, digest] = await openSource(source, registryClient, maxBlobBytes);
      const to = await openDestination(destination, registryClient, maxBlobBytes);
      const result = await copyArtifact(from, digest, to, {
        attachments: opts.attachments,
        parallelism: registries?.registryClient.parallelism ?? 4,
        ...(opts.tag === undefined ? {} : { tag: opts.tag }),
        ...(opts.quiet ? {} : { onProgress: (e: CopyEvent) => progress(e, io) }),
      });
      io.out(summary(to.location, result));
    });
}

/** What stdout says of a copy: "already present" when nothing was written, else what was. */
function summary(location: string, result: CopyResult): string {
  const { blobs, manifests, attachments, tag } = result;
  const found = attachments.tags.length + attachments.referrers.length;
  const tagged =
    tag === undefined ? "" : `  tag ${tag.name}: ${tag.action === "pushed" ? "pushed" : "already there"}\n`;
  if (!result.wrote) {
    return (
      `${location}@${result.digest} already present: nothing written` +
      ` (${found} signatures and attestations already there)\n${tagged}`
    );
  }
  return (
    `${location}@${result.digest} copied\n` +
    `  manifests: ${manifests.pushed} pushed, ${manifests.present} already there\n` +
    `  blobs: ${blobs.uploaded} uploaded (${mib(blobs.bytesUploaded)}), ${blobs.mounted} mounted, ${blobs.present} already there\n` +
    `  signatures and attestations: ${attachments.tags.length} by tag, ${attachments.referrers.length} as referrers` +
    `, ${attachments.present} of them already there\n${tagged}`
  );
}

const DEFAULT_CLIENT: FerryConfig["registryClient"] = {
  timeout: 30_000,
  retries: 3,
  parallelism: 4,
  attestationMaxBytes: 16 * 1024 * 1024,
};

function loadRegistries(opts: CopyOpts, io: CliIo): Pick<FerryConfig, "registries" | "registryClient"> {
  const loaded = loadConfigFile(configPath(opts.config, io.env), io.env);
  return loaded.config;
}

async function openSource(
  text: string,
  registryClient: () => RegistryClient,
  maxBlobBytes: number | undefined,
): Promise<[ArtifactReader, string]> {
  if (!text.startsWith(LAYOUT_PREFIX)) {
    const ref = parseDigestReference(text);
    return [registryClient().repository(ref), ref.digest];
  }
  const at = text.lastIndexOf("@");
  const dir = at < 0 ? text.slice(LAYOUT_PREFIX.length) : text.slice(LAYOUT_PREFIX.length, at);
  const layout = await OciLayout.open(dir, { ...(maxBlobBytes ? { maxBlobBytes } : {}) });
  const digest = at < 0 ? "" : text.slice(at + 1);
  if (!isDigest(digest)) {
    const names = (await layout.listTags()).join(", ") || "none";
    throw new FerryError(
      "tag_reference",
      `"${text}" names no digest: Ferry copies only an immutable digest. Write ${LAYOUT_PREFIX}${dir}@sha256:…; the layout's index.json has the digests (ref names there: ${names})`,
    );
  }
  return [layout, digest];
}

async function openDestination(
  text: string,
  registryClient: () => RegistryClient,
  maxBlobBytes: number | undefined,
): Promise<ArtifactWriter> {
  if (!text.startsWith(LAYOUT_PREFIX)) return registryClient().repository(parseRepositoryReference(text));
  const dir = text.slice(LAYOUT_PREFIX.length);
  if (dir === "" || dir.includes("@")) {
    throw new FerryError("bad_request", `"${text}" should name a directory only: ${LAYOUT_PREFIX}PATH`);
  }
  return OciLayout.open(dir, { create: true, ...(maxBlobBytes ? { maxBlobBytes } : {}) });
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function progress(event: CopyEvent, io: CliIo): void {
  switch (event.type) {
    case "blob":
      io.err(`blob ${event.digest.slice(0, 19)}… ${mib(event.size)} ${event.action}\n`);
      break;
    case "bytes":
      if (event.transferred < event.size) {
        io.err(`blob ${event.digest.slice(0, 19)}… ${mib(event.transferred)} of ${mib(event.size)}\n`);
      }
      break;
    case "manifest":
      io.err(`manifest ${event.digest.slice(0, 19)}… ${event.action}\n`);
      break;
    case "attachment":
      io.err(
        `${event.kind === "referrer" ? "referrer" : `.${event.kind} tag`} ${event.digest.slice(0, 19)}… ${event.action === "present" ? "already present" : "copied"}\n`,
      );
      break;
  }
}
