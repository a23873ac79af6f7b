import { HoardError } from "./errors.js";

const units: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/** Parses `30d`, `12h`, `1w2d`, `90m`, `45s` into milliseconds. */
export function parseDuration(value: string): number {
  const text = value.trim();
  const pattern = /(\d+)([smhdw])/gy;
  let total = 0;
  let consumed = 0;
  for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
    total += Number(match[1]) * (units[match[2] as string] as number);
    consumed = pattern.lastIndex;
  }
  if (!text || consumed !== text.length || total <= 0 || !Number.isSafeInteger(total)) {
    throw new HoardError("INVALID_ARGUMENT", `invalid duration "${value}": use a number and a unit (s, m, h, d, w), e.g. 30d or 1w12h`);
  }
  return total;
}
