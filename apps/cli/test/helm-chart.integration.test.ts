/**
 * The Helm chart (deploy/helm/hoard): `helm lint` and `helm template` (helm is built by
 * scripts/install-tools.sh into .cache/bin) with the values files in its ci/ directory, every rendered
 * object validated offline against the Kubernetes schemas of the `kubernetes-models` package (its
 * JSON-schema validators for types, required fields and enums, and a TypeScript check against its
 * types for unknown fields), installed with npm into a throwaway directory: it is not a workspace
 * dependency. The run mode's config is checked with the real `hoard config check`.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments, stringify } from "yaml";
import { runCli } from "./run-cli.ts";

const run = promisify(execFile);
const workspace = fileURLToPath(new URL("../../../", import.meta.url));
const chart = join(workspace, "deploy", "helm", "hoard");
const helm = join(workspace, ".cache", "bin", "helm");
/** The Kubernetes schemas: kubernetes-models 5.1.0 carries the OpenAPI definitions of a current Kubernetes (resource.k8s.io/v1: 1.34 or later). */
const kubernetesModels = "kubernetes-models@5.1.0";

interface KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: rendered manifests are checked field by field below.
  spec?: any;
  data?: Record<string, string>;
  automountServiceAccountToken?: boolean;
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function runHelm(args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await run(helm, args, {
      maxBuffer: 16 * 1024 * 1024,
      env: {
        ...process.env,
        HELM_CACHE_HOME: join(scratch, "helm-cache"),
        HELM_CONFIG_HOME: join(scratch, "helm-config"),
        HELM_DATA_HOME: join(scratch, "helm-data"),
      },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === "number" ? failed.code : -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

async function template(values: string[], sets: string[] = []): Promise<Result> {
  return runHelm([
    "template",
    "backups",
    chart,
    "--namespace",
    "backups",
    ...values.flatMap((file) => ["--values", file]),
    ...sets.flatMap((set) => ["--set", set]),
  ]);
}

async function render(values: string[], sets: string[] = []): Promise<KubernetesObject[]> {
  const result = await template(values, sets);
  expect(result.code, result.stderr).toBe(0);
  return parseAllDocuments(result.stdout)
    .map((document) => document.toJS() as KubernetesObject | null)
    .filter((object): object is KubernetesObject => object !== null);
}

let scratch: string;
let modelsDirectory: string;
const ciValues = (name: string) => join(chart, "ci", name);

/** The model class of an object's apiVersion and kind, from the throwaway install. */
async function modelOf(object: KubernetesObject): Promise<{ module: string; validate: (data: object) => void }> {
  const [group, version] = object.apiVersion.includes("/") ? object.apiVersion.split("/") : ["", object.apiVersion];
  const module = `kubernetes-models/${group ? `${group}/` : ""}${version}/${object.kind}`;
  const path = join(modelsDirectory, "node_modules", `${module}.js`);
  expect(existsSync(path), `${module} exists in ${kubernetesModels}`).toBe(true);
  const loaded = (await import(pathToFileURL(path).href)) as Record<string, new (data: object) => { validate(): void }>;
  const Model = loaded[object.kind];
  if (Model === undefined) throw new Error(`${module} has no ${object.kind}`);
  return { module, validate: (data) => new Model(data).validate() };
}

beforeAll(async () => {
  expect(existsSync(helm), `${helm} is missing: run bash scripts/install-tools.sh`).toBe(true);
  scratch = await mkdtemp(join(tmpdir(), "hoard-helm-"));
  modelsDirectory = join(scratch, "models");
  const { mkdir } = await import("node:fs/promises");
  await mkdir(modelsDirectory);
  await writeFile(join(modelsDirectory, "package.json"), JSON.stringify({ private: true, type: "module" }));
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(npm|pnpm)_/i.test(key)));
  await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--no-package-lock", kubernetesModels], {
    cwd: modelsDirectory,
    env,
  });
}, 600_000);

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe("helm lint", () => {
  it("passes strictly with the default values and every ci values file", async () => {
    const files = (await readdir(join(chart, "ci"))).filter((name) => name.endsWith("-values.yaml"));
    expect(files.sort()).toEqual(["both-values.yaml", "cronjobs-values.yaml", "run-values.yaml"]);
    for (const values of [[], ...files.map((file) => [ciValues(file)])]) {
      const result = await runHelm(["lint", "--strict", chart, ...values.flatMap((file) => ["--values", file])]);
      expect(result.code, `${values.join(" ")}\n${result.stdout}${result.stderr}`).toBe(0);
      expect(result.stdout).toContain("1 chart(s) linted, 0 chart(s) failed");
    }
  });
});

describe("helm template", () => {
  it("renders objects that the Kubernetes schemas accept, and no unknown fields", async () => {
    const rendered = [
      ...(await render([])),
      ...(await render([ciValues("cronjobs-values.yaml")])),
      ...(await render([ciValues("run-values.yaml")])),
      ...(await render([ciValues("both-values.yaml")])),
    ];
    const kinds = new Set(rendered.map((object) => object.kind));
    expect([...kinds].sort()).toEqual(["ConfigMap", "CronJob", "Deployment", "Service", "ServiceAccount"]);
    const checks: string[] = [];
    for (const [index, object] of rendered.entries()) {
      const { module, validate } = await modelOf(object);
      const { apiVersion: _apiVersion, kind: _kind, ...data } = object;
      expect(() => validate(data), `${object.kind} ${object.metadata.name}`).not.toThrow();
      // The same object as a literal against the model's type: TypeScript's excess property check
      // finds fields Kubernetes does not know (the JSON-schema validators let them through).
      const name = `Model${index}`;
      checks.push(`import { ${object.kind} as ${name} } from "${module}";\nnew ${name}(${JSON.stringify(data, null, 2)});\n`);
    }
    const project = join(modelsDirectory, "check");
    const { mkdir } = await import("node:fs/promises");
    await mkdir(project, { recursive: true });
    await writeFile(join(project, "rendered.ts"), checks.join("\n"));
    await writeFile(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: [],
        },
        files: ["rendered.ts"],
      }),
    );
    const tsc = join(workspace, "node_modules", ".bin", "tsc");
    const checked = await run(tsc, ["-p", project]).then(
      () => ({ code: 0, output: "" }),
      (error: { code?: number; stdout?: string }) => ({ code: error.code ?? -1, output: error.stdout ?? "" }),
    );
    expect(checked.output).toBe("");
    expect(checked.code).toBe(0);
  });

  it("makes one CronJob per job: never overlapping, limited retries, resources, secrets only from Secrets", async () => {
    const objects = await render([ciValues("cronjobs-values.yaml")]);
    const cronJobs = objects.filter((object) => object.kind === "CronJob");
    expect(cronJobs.map((object) => object.metadata.name).sort()).toEqual(["backups-hoard-shop", "backups-hoard-shop-prune"]);
    const shop = cronJobs.find((object) => object.metadata.name === "backups-hoard-shop") as KubernetesObject;
    expect(shop.spec.schedule).toBe("0 3 * * *");
    expect(shop.spec.timeZone).toBe("Europe/Berlin");
    expect(shop.spec.jobTemplate.spec.backoffLimit).toBe(1);
    expect(shop.spec.jobTemplate.spec.activeDeadlineSeconds).toBe(7200);
    expect(shop.spec.jobTemplate.spec.podFailurePolicy.rules[0]).toEqual({
      action: "FailJob",
      onExitCodes: { containerName: "hoard", operator: "In", values: [2] },
    });
    for (const cronJob of cronJobs) {
      expect(cronJob.spec.concurrencyPolicy).toBe("Forbid");
      const pod = cronJob.spec.jobTemplate.spec.template.spec;
      expect(pod.restartPolicy).toBe("Never");
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
      const [container] = pod.containers;
      expect(container.image).toBe("registry.example.com/hoard:0.1.0");
      expect(container.resources.limits.memory).toMatch(/^\d+[MG]i$/);
      expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
      expect(container.volumeMounts).toContainEqual({ name: "tmp", mountPath: "/tmp" });
      for (const arg of container.args) expect(arg).not.toMatch(/:\/\/[^/@]*:[^/@]*@/);
      // Credentials only from Secrets; plain values hold nothing secret.
      const env = container.env as Array<{ name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }>;
      expect(env.find((entry) => entry.name === "AWS_SECRET_ACCESS_KEY")?.valueFrom?.secretKeyRef).toEqual({
        name: "backup-s3",
        key: "secret-access-key",
      });
      expect(env.find((entry) => entry.name === "HOARD_S3_REGION")).toEqual({ name: "HOARD_S3_REGION", value: "eu-central-1" });
    }
    const shopContainer = shop.spec.jobTemplate.spec.template.spec.containers[0];
    expect(shopContainer.args).toEqual(["backup", "s3://my-backups/shop", "--prefix", "shop", "--mode", "stream"]);
    expect(shopContainer.env).toContainEqual({
      name: "HOARD_DATABASE_URL",
      valueFrom: { secretKeyRef: { name: "shop-database", key: "url" } },
    });
    expect(shopContainer.resources).toEqual({ requests: { cpu: "250m", memory: "256Mi" }, limits: { memory: "512Mi" } });
    const prune = cronJobs.find((object) => object.metadata.name === "backups-hoard-shop-prune") as KubernetesObject;
    // Numbers in args are strings, as a container's args must be.
    expect(prune.spec.jobTemplate.spec.template.spec.containers[0].args).toEqual([
      "prune",
      "s3://my-backups/shop",
      "--prefix",
      "shop",
      "--keep-daily",
      "7",
      "--keep-weekly",
      "4",
    ]);
    expect(prune.spec.jobTemplate.spec.backoffLimit).toBe(2);
    expect(objects.filter((object) => object.kind === "Deployment")).toEqual([]);
  });

  it("runs `hoard run` as one Deployment: the config in a ConfigMap, /healthz for readiness, /metrics for liveness and scraping", async () => {
    const objects = await render([ciValues("run-values.yaml")]);
    const deployment = objects.find((object) => object.kind === "Deployment") as KubernetesObject;
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy).toEqual({ type: "Recreate" });
    const pod = deployment.spec.template.spec;
    const [container] = pod.containers;
    expect(container.args).toEqual(["run", "--config", "/etc/hoard/hoard.yaml", "--listen", "0.0.0.0:9464"]);
    expect(container.ports).toEqual([{ name: "metrics", containerPort: 9464, protocol: "TCP" }]);
    expect(container.readinessProbe.httpGet).toEqual({ path: "/healthz", port: "metrics" });
    expect(container.livenessProbe.httpGet).toEqual({ path: "/metrics", port: "metrics" });
    expect(container.env).toContainEqual({
      name: "SHOP_PASSWORD",
      valueFrom: { secretKeyRef: { name: "shop-database", key: "password" } },
    });
    expect(container.envFrom).toEqual([{ secretRef: { name: "backup-s3" } }]);
    expect(container.volumeMounts).toContainEqual({ name: "config", mountPath: "/etc/hoard", readOnly: true });
    const configMapName = pod.volumes.find((volume: { name: string }) => volume.name === "config").configMap.name;
    const configMap = objects.find((object) => object.kind === "ConfigMap") as KubernetesObject;
    expect(configMap.metadata.name).toBe(configMapName);
    expect(deployment.spec.template.metadata.annotations["checksum/config"]).toMatch(/^[0-9a-f]{64}$/);
    expect(deployment.spec.template.metadata.annotations["prometheus.io/port"]).toBe("9464");
    const service = objects.find((object) => object.kind === "Service") as KubernetesObject;
    expect(service.spec.ports).toEqual([{ name: "metrics", port: 9464, targetPort: "metrics", protocol: "TCP" }]);
    expect(service.spec.publishNotReadyAddresses).toBe(true);
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);

    // The ConfigMap holds exactly the values' config, and hoard itself accepts it.
    const values = parse(await import("node:fs/promises").then(({ readFile }) => readFile(ciValues("run-values.yaml"), "utf8"))) as {
      run: { config: object };
    };
    const config = configMap.data?.["hoard.yaml"] as string;
    expect(parse(config)).toEqual(values.run.config);
    const file = join(scratch, "hoard.yaml");
    await writeFile(file, config);
    const checked = await runCli(["config", "check", "--config", file], { SHOP_PASSWORD: "shop-secret", BLOG_PASSWORD: "blog-secret" });
    expect(checked.code, checked.stderr).toBe(0);
  });

  it("matches the flags of `hoard run`", async () => {
    const help = await runCli(["run", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("--config");
    expect(help.stdout).toContain("--listen");
  });

  it("uses the ci values' overrides: an existing service account, a pull secret, placement, another port", async () => {
    const objects = await render([ciValues("both-values.yaml")]);
    expect(objects.filter((object) => object.kind === "ServiceAccount")).toEqual([]);
    const cronJob = objects.find((object) => object.kind === "CronJob") as KubernetesObject;
    expect(cronJob.metadata.name).toBe("backups-warehouse");
    expect(cronJob.spec.suspend).toBe(true);
    const pod = cronJob.spec.jobTemplate.spec.template.spec;
    expect(pod.serviceAccountName).toBe("backup-runner");
    expect(pod.imagePullSecrets).toEqual([{ name: "registry-credentials" }]);
    expect(pod.nodeSelector).toEqual({ "kubernetes.io/os": "linux" });
    expect(pod.volumes).toEqual([{ name: "tmp", emptyDir: { sizeLimit: "50Gi" } }]);
    const deployment = objects.find((object) => object.kind === "Deployment") as KubernetesObject;
    expect(deployment.spec.template.spec.containers[0].args).toContain("0.0.0.0:9100");
    expect(deployment.spec.template.metadata.annotations["prometheus.io/scrape"]).toBeUndefined();
  });

  it("refuses passwords in args, plain env and the run config, and says where to put them", async () => {
    const base = ciValues("cronjobs-values.yaml");
    const inArgs = await template([base], ["jobs.shop.args[1]=postgresql://app:hunter2@db:5432/shop"]);
    expect(inArgs.code).not.toBe(0);
    expect(inArgs.stderr).toContain("jobs.shop.args[1] holds a URL with a password: put it in a Kubernetes Secret and use secretEnv");
    expect(inArgs.stderr).not.toContain("hunter2");

    const inEnv = await template([base], ["env.HOARD_DATABASE_URL=mysql://root:hunter2@db/shop"]);
    expect(inEnv.code).not.toBe(0);
    expect(inEnv.stderr).toContain("env.HOARD_DATABASE_URL holds a URL with a password");

    const runValues = join(scratch, "run-with-password.yaml");
    await writeFile(
      runValues,
      stringify({
        image: { repository: "r" },
        run: { enabled: true, config: { jobs: { a: { database: "postgresql://u:hunter2@db/a", storage: "/b" } } } },
      }),
    );
    const inConfig = await template([runValues]);
    expect(inConfig.code).not.toBe(0);
    expect(inConfig.stderr).toContain("run.config holds a URL with a password");

    // A user name alone is no secret.
    const userOnly = await template(
      [base],
      [
        "jobs.shop.args[1]=s3://bucket/shop",
        "jobs.other.schedule=@daily",
        "jobs.other.args={backup,postgresql://postgres@db/other,/backups}",
      ],
    );
    expect(userOnly.code, userOnly.stderr).toBe(0);
  });

  it("refuses values it cannot render into a working object", async () => {
    const noImage = await template([], ["jobs.shop.schedule=@daily", "jobs.shop.args={list,/backups}"]);
    expect(noImage.code).not.toBe(0);
    expect(noImage.stderr).toContain("image.repository: set it to where you pushed the image built from hoard's Dockerfile");

    const noArgs = await template([ciValues("cronjobs-values.yaml")], ["jobs.bare.schedule=@daily"]);
    expect(noArgs.code).not.toBe(0);
    expect(noArgs.stderr).toMatch(/args/);

    const badName = await template([ciValues("cronjobs-values.yaml")], ["jobs.Shop_DB.schedule=@daily", "jobs.Shop_DB.args={list,/b}"]);
    expect(badName.code).not.toBe(0);
    expect(badName.stderr).toMatch(/Shop_DB/);

    const noConfig = await template([], ["image.repository=r", "run.enabled=true"]);
    expect(noConfig.code).not.toBe(0);
    expect(noConfig.stderr).toContain("run.config: the hoard.yaml to run");
  });
});
