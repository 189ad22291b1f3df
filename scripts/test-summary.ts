// Prints vitest's JSON report as one closing line, "vitest: N passed, N failed[, N skipped]".
// Exits non-zero when any test failed or was skipped (a skipped test is a failure in disguise),
// or when no test ran at all.
import { readFileSync } from "node:fs";

interface Report {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  numTotalTests: number;
  testResults: { name: string; status: string; message?: string }[];
}

const report = JSON.parse(readFileSync(process.argv[2] ?? ".cache/vitest-report.json", "utf8")) as Report;
const skipped = report.numPendingTests + report.numTodoTests;
const brokenFiles = report.testResults.filter((f) => f.status === "failed" && f.message);
for (const file of brokenFiles)
  process.stderr.write(`failed to run: ${file.name}: ${file.message?.split("\n")[0]}\n`);
const failed = report.numFailedTests + brokenFiles.length;
process.stdout.write(
  `vitest: ${report.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}\n`,
);
process.exitCode = failed > 0 || skipped > 0 || report.numTotalTests === 0 ? 1 : 0;
