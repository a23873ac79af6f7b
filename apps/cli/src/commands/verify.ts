import { type DrillResult, type Driver, drill, HoardError, type Logger, splitObjectUrl, type VerifyResult, verify } from "@hoard/core";
import type { ArgumentsCamelCase, Argv, CommandModule } from "yargs";
import {
  createLogger,
  driverSettings,
  type GlobalArguments,
  openCliDriver,
  openCliStorage,
  type StorageArguments,
  withDriverOptions,
  withStorageOptions,
} from "../context.js";
import { decryptionFromArguments, withDecryptionOptions } from "../encryption-options.js";
import { withEnvironment } from "../environment.js";
import { watchInterrupts } from "../interrupt.js";
import { formatBytes, writeResult } from "../output.js";
import { type DatabaseUrlArguments, resolveDatabaseUrl, withDatabaseUrlFile } from "./database-url.js";
import { commandSummaries } from "./summaries.js";

interface VerifyArguments extends GlobalArguments, StorageArguments, DatabaseUrlArguments {
  backupUrl: string;
  latest: boolean;
  prefix: string;
  json: boolean;
  structureOnly: boolean;
  drill?: string;
}

/**
 * The driver that checks an archive of a kind, opened without a database connection: the
 * archive checks run local tools only (pg_restore, a reader of the dump), so a placeholder URL of
 * the kind's scheme serves; the driver's settings (tool paths) come from the usual flags.
 */
function archiveDrivers(args: ArgumentsCamelCase<VerifyArguments>, logger: Logger) {
  return async (kind: string): Promise<Driver> => openCliDriver(`${kind}://localhost/hoard_verify`, driverSettings(args, logger, {}));
}

export const verifyCommand: CommandModule<GlobalArguments, VerifyArguments> = {
  command: commandSummaries.verify.command,
  describe: commandSummaries.verify.describe,
  builder: (yargs) =>
    withEnvironment(
      withDecryptionOptions(withDatabaseUrlFile(withDriverOptions(withStorageOptions(yargs as Argv<GlobalArguments>))))
        .positional("backup-url", { type: "string", demandOption: true, describe: "the backup object, or with --latest the storage URL" })
        .option("latest", { type: "boolean", default: false, describe: "verify the newest backup with --prefix under the storage URL" })
        .option("prefix", { type: "string", default: "backup", describe: "with --latest: which backups to consider" })
        .option("json", { type: "boolean", default: false, describe: "print the result as JSON" })
        .option("structure-only", {
          type: "boolean",
          default: false,
          describe:
            "for a backup without a manifest (older, or another tool's): check only that it decrypts, decompresses and reads as its format",
        })
        .option("drill", {
          type: "string",
          describe:
            "also restore into this scratch database (created and dropped by hoard, or an existing empty one) and compare it with the manifest; --drill alone takes the URL from HOARD_DATABASE_URL or --database-url-file",
        })
        .example("$0 verify s3://backups/shop/backup-20261125030000.dump.gz", "check size, checksum and structure")
        .example("$0 verify s3://backups/shop --latest --json", "the newest backup, for scripts")
        .example(
          "$0 verify s3://backups/shop --latest --drill postgresql://postgres@localhost/shop_drill",
          "restore drill into a scratch database",
        ),
    ) as unknown as Argv<VerifyArguments>,
  async handler(args: ArgumentsCamelCase<VerifyArguments>) {
    const location = args.latest ? { storageUrl: args.backupUrl, key: undefined } : splitObjectUrl(args.backupUrl);
    if (!args.latest && !location.key) throw new HoardError("INVALID_ARGUMENT", "name a backup object, or a storage URL with --latest");
    const drillUrl = args.drill === undefined ? undefined : await resolveDatabaseUrl(args.drill === "" ? undefined : args.drill, args);
    const logger = createLogger(args);
    const decryption = await decryptionFromArguments(args);
    const interrupt = watchInterrupts();
    try {
      const work = async (): Promise<{ verification: VerifyResult; drilled?: DrillResult; scratch?: string }> => {
        const storage = await openCliStorage(location.storageUrl, args);
        const common = {
          storage,
          key: location.key,
          latest: args.latest ? { prefix: args.prefix } : undefined,
          structureOnly: args.structureOnly,
          decryption,
          logger,
          signal: interrupt.signal,
        };
        if (drillUrl === undefined) return { verification: await verify({ ...common, driver: archiveDrivers(args, logger) }) };
        const driver = await openCliDriver(drillUrl, driverSettings(args, logger, {}));
        const drilled = await drill({ ...common, driver });
        return { verification: drilled.verification, drilled, scratch: driver.url };
      };
      const result = await interrupt.run(work(), {
        waitForCleanup: true,
        state: () =>
          drillUrl === undefined
            ? "nothing was changed"
            : "a scratch database hoard created is dropped before hoard exits (check it if hoard was stopped twice)",
      });
      logger.finish();
      await writeResult(args.json ? `${JSON.stringify(jsonOf(result), null, 2)}\n` : textOf(result));
    } finally {
      interrupt.dispose();
      logger.finish();
    }
  },
};

function jsonOf({ verification, drilled, scratch }: { verification: VerifyResult; drilled?: DrillResult; scratch?: string }) {
  return {
    key: verification.key,
    ok: true,
    manifest: verification.manifest !== undefined,
    size: verification.size,
    sha256: verification.sha256,
    checksum: verification.manifest ? "matches the manifest" : "not checked: no manifest",
    kind: verification.kind ?? verification.manifest?.database.kind,
    archive: verification.archive?.summary ?? null,
    contents: verification.archive?.inventory ?? null,
    durationMs: verification.durationMs,
    ...(drilled && {
      drill: {
        database: scratch,
        scratchCreated: drilled.scratchCreated,
        restoreMs: drilled.restoreMs,
        compared: drilled.compared,
      },
    }),
  };
}

function textOf({ verification, drilled, scratch }: { verification: VerifyResult; drilled?: DrillResult; scratch?: string }): string {
  const lines = [
    `${verification.key}: OK`,
    `  size      ${formatBytes(verification.size)} (${verification.size} bytes)`,
    `  sha256    ${verification.sha256} ${verification.manifest ? "(matches the manifest)" : "(no manifest: not checked)"}`,
    `  archive   ${verification.archive?.summary ?? "decompressed to the end (no structure check for this kind)"}`,
  ];
  if (drilled) {
    lines.push(
      `  drill     restored into ${scratch} in ${(drilled.restoreMs / 1000).toFixed(1)} s; ${drilled.compared.items} tables or collections, ${drilled.compared.counts} counts compared${drilled.scratchCreated ? "; scratch database dropped" : ""}`,
    );
  }
  return `${lines.join("\n")}\n`;
}
