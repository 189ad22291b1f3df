import { FerryError } from "../common/errors.ts";
import type { FerryConfig } from "../config/schema.ts";
import { LAYOUT_PREFIX, OciLayout } from "../registry/layout.ts";
import { writeDemoImage } from "./image.ts";

/** An attestation to ask Ferry for (the body of `POST /v1/signatures`' `attestations[]`). */
export interface AttestationAsk {
  predicateType: string;
  predicate: unknown;
}

/** How the seed asks Ferry to sign: `POST /v1/signatures` with a dev pipeline token, in the CLI. */
export type SignPort = (image: string, attestations: AttestationAsk[]) => Promise<void>;

/** What {@link seedDemo} seeds. */
export interface SeedRequest {
  config: Pick<FerryConfig, "apps" | "environments">;
  app: string;
  /** The environment whose layout receives the image: by default the first one, which has no `after`. */
  environment?: string;
  sign: SignPort;
  now?: Date;
}

/** What was seeded. */
export interface Seeded {
  /** `oci-layout:/abs/dir@sha256:…` */
  image: string;
  digest: string;
  environment: string;
}

/**
 * The SLSA v1 provenance a GitHub Actions build of acme/demo would carry (the builder and source
 * the dev config's staging `require.provenance` pins). Ferry attests it as the pipeline's word, as
 * it does for any pipeline that uploads its provenance.
 */
export function demoProvenance(digest: string): AttestationAsk {
  return {
    predicateType: "https://slsa.dev/provenance/v1",
    predicate: {
      buildDefinition: {
        buildType: "https://actions.github.io/buildtypes/workflow/v1",
        externalParameters: {
          workflow: {
            ref: "refs/heads/main",
            repository: "https://github.com/acme/demo",
            path: ".github/workflows/release.yml",
          },
        },
        resolvedDependencies: [
          { uri: "git+https://github.com/acme/demo@refs/heads/main", digest: { gitCommit: "0".repeat(40) } },
        ],
      },
      runDetails: {
        builder: { id: "https://github.com/actions/runner/github-hosted" },
        metadata: { invocationId: `ferry-dev-seed/${digest}` },
      },
    },
  };
}

/**
 * Builds a demo image into the app's layout of `environment`, then has Ferry sign it and attest
 * its provenance (through `sign`), so that environment's `require` passes with Ferry's own key.
 */
export async function seedDemo(request: SeedRequest): Promise<Seeded> {
  const { config } = request;
  const app = config.apps.find((a) => a.name === request.app);
  if (app === undefined) {
    throw new FerryError(
      "not_found",
      `no app ${request.app} in the config (apps: ${config.apps.map((a) => a.name).join(", ") || "none"})`,
    );
  }
  const environment = request.environment ?? config.environments.find((e) => e.after === undefined)?.name;
  const target = environment === undefined ? undefined : app.images[environment];
  if (environment === undefined || target === undefined) {
    throw new FerryError(
      "not_found",
      `app ${app.name} has no image for ${environment ?? "a first environment"} (apps[].images)`,
    );
  }
  if (!target.startsWith(LAYOUT_PREFIX)) {
    throw new FerryError(
      "bad_request",
      `app ${app.name}'s ${environment} image is ${target}, not an oci-layout: directory; ferry dev seed writes only into layouts (push to a registry with your own tools)`,
    );
  }
  const layout = await OciLayout.open(target.slice(LAYOUT_PREFIX.length), { create: true });
  const digest = await writeDemoImage(layout, "latest", request.now);
  const image = `${target}@${digest}`;
  await request.sign(image, [demoProvenance(digest)]);
  return { image, digest, environment };
}
