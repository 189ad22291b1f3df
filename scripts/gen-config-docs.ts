// Regenerates docs/config.schema.json and docs/config.md from src/config/schema.ts.
import { writeFileSync } from "node:fs";
import { configJsonSchema, configMarkdown } from "../src/config/docs.ts";

const root = new URL("../", import.meta.url);
writeFileSync(new URL("docs/config.schema.json", root), `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
writeFileSync(new URL("docs/config.md", root), configMarkdown());
process.stdout.write("wrote docs/config.schema.json and docs/config.md\n");
