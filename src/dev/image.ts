import { gzipSync } from "node:zlib";
import { sha256 } from "../registry/digest.ts";
import type { Descriptor } from "../registry/manifest.ts";
import { MediaType } from "../registry/media-types.ts";
import type { ArtifactWriter } from "../registry/ports.ts";

const LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
const IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json";

/** A one-file ustar archive: enough for a registry and any OCI client to treat it as a real layer. */
export function tarOneFile(name: string, content: Buffer, mtime = 0): Buffer {
  const header = Buffer.alloc(512);
  const put = (value: string, offset: number, length: number) => {
    header.write(value.slice(0, length), offset, length, "ascii");
  };
  const octal = (value: number, length: number) => `${value.toString(8).padStart(length - 1, "0")}\0`;
  put(name, 0, 100);
  put(octal(0o644, 8), 100, 8);
  put(octal(0, 8), 108, 8);
  put(octal(0, 8), 116, 8);
  put(octal(content.length, 12), 124, 12);
  put(octal(mtime, 12), 136, 12);
  put("        ", 148, 8); // the checksum is computed with its own field as spaces
  put("0", 156, 1);
  put("ustar\0", 257, 6);
  put("00", 263, 2);
  let sum = 0;
  for (const byte of header) sum += byte;
  put(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8);
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, padding, Buffer.alloc(1024)]);
}

async function put(writer: ArtifactWriter, mediaType: string, bytes: Uint8Array): Promise<Descriptor> {
  const descriptor = { mediaType, digest: sha256(bytes), size: bytes.byteLength };
  await writer.putBlob(descriptor, bytes);
  return descriptor;
}

/**
 * Writes a small demo image (one layer holding `hello.txt`, linux/amd64) into `writer`, tagged
 * `tag`, and returns its manifest digest. The file names the time it was built, so every seed is a
 * new digest: a tour run twice promotes something new each time.
 */
export async function writeDemoImage(writer: ArtifactWriter, tag: string, now = new Date()): Promise<string> {
  const text = Buffer.from(`Hello from Ferry's demo image, built ${now.toISOString()}\n`);
  const tar = tarOneFile("hello.txt", text, Math.floor(now.getTime() / 1000));
  const layer = await put(writer, LAYER_GZIP, gzipSync(tar));
  const config = await put(
    writer,
    IMAGE_CONFIG,
    Buffer.from(
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        created: now.toISOString(),
        config: { Cmd: ["cat", "/hello.txt"], Labels: { "org.opencontainers.image.title": "ferry-demo" } },
        rootfs: { type: "layers", diff_ids: [sha256(tar)] },
      }),
    ),
  );
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [layer] }),
  );
  const { digest } = await writer.putManifest(manifest, MediaType.ociManifest, { tag });
  return digest;
}
