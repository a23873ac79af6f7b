import { readFileSync } from "node:fs";
import type { ProcessOwner } from "./process.ts";
import { runCommandOrThrow } from "./process.ts";

const fallbackUserName = "hoardtest";
let cachedOwner: Promise<ProcessOwner | undefined> | undefined;

/**
 * The account that throwaway database servers run as. PostgreSQL and MariaDB refuse to run as
 * root, so when this process is root they run as HOARD_TEST_SERVER_USER, else `nobody`, else a
 * `hoardtest` system account that is created with useradd. Otherwise (not root) they run as the
 * current user and this returns undefined.
 */
export function serverOwner(): Promise<ProcessOwner | undefined> {
  cachedOwner ??= findServerOwner();
  return cachedOwner;
}

async function findServerOwner(): Promise<ProcessOwner | undefined> {
  if (process.getuid?.() !== 0) {
    return undefined;
  }
  const configured = process.env.HOARD_TEST_SERVER_USER;
  if (configured !== undefined && configured !== "") {
    const owner = lookUpUser(configured);
    if (owner === undefined) {
      throw new Error(`HOARD_TEST_SERVER_USER names ${configured}, which is not in /etc/passwd`);
    }
    return owner;
  }
  const existing = lookUpUser("nobody") ?? lookUpUser(fallbackUserName);
  if (existing !== undefined) {
    return existing;
  }
  await runCommandOrThrow("useradd", ["--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", fallbackUserName]);
  const created = lookUpUser(fallbackUserName);
  if (created === undefined) {
    throw new Error(`useradd ${fallbackUserName} succeeded but the user is not in /etc/passwd`);
  }
  return created;
}

/** The uid and gid of a user in /etc/passwd, or undefined. */
function lookUpUser(name: string): ProcessOwner | undefined {
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const fields = line.split(":");
    if (fields[0] === name && fields.length >= 4) {
      return { uid: Number(fields[2]), gid: Number(fields[3]) };
    }
  }
  return undefined;
}
