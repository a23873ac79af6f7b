import { Readable } from "node:stream";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { createS3Storage } from "../src/index.ts";
import { createBucket } from "./helpers.ts";

// The README's example, with the test server's endpoint and a fresh bucket; credentials come from
// the environment as they would for a user (this file runs in its own worker).
const saved = { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY };

beforeAll(() => {
  process.env.AWS_ACCESS_KEY_ID = inject("s3").accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = inject("s3").secretAccessKey;
});

afterAll(() => {
  if (saved.accessKeyId === undefined) delete process.env.AWS_ACCESS_KEY_ID;
  else process.env.AWS_ACCESS_KEY_ID = saved.accessKeyId;
  if (saved.secretAccessKey === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
  else process.env.AWS_SECRET_ACCESS_KEY = saved.secretAccessKey;
});

it("runs the README example", async () => {
  const bucket = await createBucket();
  const listed: string[] = [];
  const log = (...values: unknown[]) => listed.push(values.join(" "));

  const storage = createS3Storage({
    bucket,
    prefix: "shop/daily",
    endpoint: inject("s3").endpoint, // leave out for AWS S3
    serverSideEncryption: "AES256",
    storageClass: "STANDARD_IA",
  });

  await storage.upload("hello.txt", Readable.from([Buffer.from("hello, hoard\n")]));
  for await (const object of storage.list()) log(object.key, object.size);
  await storage.copy("hello.txt", "hello-copy.txt");
  const body = await storage.download("hello-copy.txt");

  expect(listed).toEqual(["hello.txt 13"]);
  expect((await body.toArray()).join("")).toBe("hello, hoard\n");
});
