import { Cron } from "croner";

/**
 * Parses a cron expression the way Ferry uses it (recurring freeze windows): five fields, minute
 * resolution, evaluated in an IANA time zone. Lives here, below config, because the config schema
 * validates expressions at load and the promotion gates evaluate them.
 */
export function compileCron(expression: string, timeZone: string): Cron {
  // `domAndDow: false`: a day-of-month and a day-of-week both set match either, as in Vixie cron.
  return new Cron(expression, { timezone: timeZone, paused: true, mode: "5-part", domAndDow: false });
}
