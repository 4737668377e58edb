/**
 * Bodies through `gatehouse ingress`, both ways: empty, 1 MiB and 200 MiB,
 * binary, with Content-Length and chunked; what arrives must hash the same
 * as what was sent, and the proxy's resident memory must not grow with the
 * body (it streams; it does not buffer).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { RecordingUpstream, binaryBlock, json, repeatedSha256, rssKiB, sampleRss, send, startIngress, type IngressProcess } from './harness';

const MiB = 1024 * 1024;
/** What the proxy's RSS may grow by while 200 MiB pass through it: far less than the body. */
const RSS_GROWTH_LIMIT_KIB = 100 * 1024;

function routes(port: number): string {
  return `routes:\n  - host: files.example.test\n    upstream: { url: http://127.0.0.1:${port} }\n    sign: false\n`;
}

/** `count` blocks as a stream that waits for its reader (back-pressure all the way). */
function blocks(block: Buffer, count: number): Readable {
  let left = count;
  return new Readable({
    read() {
      if (left-- > 0) this.push(block);
      else this.push(null);
    },
  });
}

async function setup(t: import('node:test').TestContext): Promise<{ up: RecordingUpstream; ingress: IngressProcess }> {
  const up = await RecordingUpstream.start(t);
  const ingress = await startIngress(t, { routes: routes(up.port), args: ['--access-log', 'off'] });
  return { up, ingress };
}

test('request bodies of 0 B and 1 MiB arrive byte-identical, with Content-Length and chunked', async (t) => {
  const { up, ingress } = await setup(t);
  const empty = await send({ port: ingress.port, host: 'files.example.test', method: 'POST', path: '/empty', body: Buffer.alloc(0) });
  assert.equal(empty.status, 200);
  assert.equal(json(empty).bodyBytes, 0);
  assert.equal(json(empty).bodySha256, createHash('sha256').digest('hex'));

  const mib = binaryBlock(MiB);
  const sha = createHash('sha256').update(mib).digest('hex');
  const fixed = await send({ port: ingress.port, host: 'files.example.test', method: 'PUT', path: '/fixed', body: mib, headers: ['Content-Type', 'application/octet-stream'] });
  const chunked = await send({ port: ingress.port, host: 'files.example.test', method: 'PUT', path: '/chunked', body: blocks(mib.subarray(0, 64 * 1024), 16) });
  assert.equal(fixed.status, 200);
  assert.equal(chunked.status, 200);
  const [f, c] = [json(fixed), json(chunked)];
  assert.equal(f.bodyBytes, MiB);
  assert.equal(f.bodySha256, sha);
  assert.equal((f.headers as Record<string, string>)['content-length'], String(MiB));
  assert.equal(c.bodyBytes, MiB);
  assert.equal(c.bodySha256, repeatedSha256(mib.subarray(0, 64 * 1024), 16));
  // A chunked upload stays chunked upstream (no Content-Length invented, nothing buffered to count it).
  assert.equal((c.headers as Record<string, string>)['transfer-encoding'], 'chunked');
  assert.equal((c.headers as Record<string, string>)['content-length'], undefined);
  assert.equal(up.requests.length, 3);
});

test('response bodies stream back byte-identical, with Content-Length and chunked', async (t) => {
  const { ingress } = await setup(t);
  const expected = repeatedSha256(RecordingUpstream.BLOCK, 16);
  const fixed = await send({ port: ingress.port, host: 'files.example.test', path: '/download?blocks=16' });
  const chunked = await send({ port: ingress.port, host: 'files.example.test', path: '/download?blocks=16&chunked=1' });
  assert.equal(fixed.status, 200);
  assert.equal(fixed.headers['content-length'], String(16 * 64 * 1024));
  assert.equal(fixed.bodySha256, expected);
  assert.equal(chunked.status, 200);
  assert.equal(chunked.headers['transfer-encoding'], 'chunked');
  assert.equal(chunked.bodySha256, expected);
  const empty = await send({ port: ingress.port, host: 'files.example.test', path: '/download?blocks=0' });
  assert.equal(empty.status, 200);
  assert.equal(empty.bodyBytes, 0);
});

test('200 MiB up and 200 MiB down stream through with flat memory', async (t) => {
  const { up, ingress } = await setup(t);
  const block = RecordingUpstream.BLOCK;
  const count = (200 * MiB) / block.length;
  // Warm up (code paths, pools), then take the baseline.
  await send({ port: ingress.port, host: 'files.example.test', path: '/download?blocks=64' });
  await send({ port: ingress.port, host: 'files.example.test', method: 'POST', path: '/warm', body: blocks(block, 64) });
  const before = rssKiB(ingress.pid);

  const upload = sampleRss(ingress.pid);
  const put = await send({ port: ingress.port, host: 'files.example.test', method: 'POST', path: '/big-upload', body: blocks(block, count) });
  const uploadPeak = upload.stop();
  assert.equal(put.status, 200);
  const got = up.requests.find((r) => r.url === '/big-upload');
  assert.ok(got);
  assert.equal(got.bodyBytes, 200 * MiB);
  assert.equal(got.bodySha256, repeatedSha256(block, count));

  const download = sampleRss(ingress.pid);
  const res = await send({ port: ingress.port, host: 'files.example.test', path: `/download?blocks=${count}&chunked=1` });
  const downloadPeak = download.stop();
  assert.equal(res.status, 200);
  assert.equal(res.bodyBytes, 200 * MiB);
  assert.equal(res.bodySha256, repeatedSha256(block, count));

  const growth = Math.max(uploadPeak, downloadPeak) - before;
  assert.ok(growth < RSS_GROWTH_LIMIT_KIB, `RSS grew by ${growth} KiB (from ${before} KiB) while 200 MiB passed each way`);
});
