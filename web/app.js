// qft's browser page: browse, download and upload over WebTransport, speaking the same protocol
// as qft's own client (see src/protocol/mod.rs): one request per bidirectional stream, frames of
// a 4-byte big-endian length and a postcard-encoded message, raw file bodies.
//
// Downloads are verified twice before anything is saved: each whole piece against the SHA-256
// the server sent first (the resume exchange's piece hashes, checked with WebCrypto as the
// bytes arrive), then the whole file against the trailer's SHA-256 (hashed piece by piece as it
// arrives: WebCrypto has no incremental hash, so `Sha256` below does it). Uploads send the
// file's SHA-256 after the body; the server checks it before the file appears under its name.
//
// Nothing holds a whole file: a download keeps at most the piece being checked, and hands each
// verified piece to the browser as a Blob (Chromium keeps large blobs on disk); an upload reads
// the file a block at a time (`File.slice`). `window.qftMemory.peak` is the most file bytes the
// page itself held at once, for the tests.
'use strict';

const BLOCK = 256 * 1024;
const MAX_FRAME = 1 << 20;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
const $ = (id) => document.getElementById(id);

// ---- postcard, for the few types the page sends and reads ----------------------------------

class Writer {
  constructor() { this.bytes = []; }
  varint(n) {
    while (n >= 0x80) { this.bytes.push((n % 0x80) | 0x80); n = Math.floor(n / 0x80); }
    this.bytes.push(n);
    return this;
  }
  str(s) { const u = encoder.encode(s); this.varint(u.length); this.raw(u); return this; }
  raw(u) { for (const b of u) this.bytes.push(b); return this; }
  frame() {
    const out = new Uint8Array(4 + this.bytes.length);
    new DataView(out.buffer).setUint32(0, this.bytes.length);
    out.set(this.bytes, 4);
    return out;
  }
}

class Reader {
  constructor(bytes) { this.bytes = bytes; this.at = 0; }
  u8() {
    if (this.at >= this.bytes.length) throw new Error('a message from the server is cut short');
    return this.bytes[this.at++];
  }
  varint() {
    let n = 0, scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.u8();
      n += (b & 0x7f) * scale;
      if (!(b & 0x80)) return n;
      scale *= 128;
    }
    throw new Error('a malformed number from the server');
  }
  take(n) {
    if (this.at + n > this.bytes.length) throw new Error('a message from the server is cut short');
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  str() { return decoder.decode(this.take(this.varint())); }
  bool() { return this.u8() !== 0; }
  option(read) { return this.u8() ? read() : null; }
}

// ---- SHA-256, incrementally (FIPS 180-4), for a whole file seen a piece at a time -----------

const K = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

class Sha256 {
  constructor() {
    this.h = new Int32Array([
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]);
    this.w = new Int32Array(64);
    this.block = new Uint8Array(64);
    this.used = 0;
    this.bytes = 0;
  }
  compress(p, off) {
    const w = this.w, h = this.h;
    for (let i = 0; i < 16; i++, off += 4) {
      w[i] = (p[off] << 24) | (p[off + 1] << 16) | (p[off + 2] << 8) | p[off + 3];
    }
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15], b = w[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (let i = 0; i < 64; i++) {
      const s1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const t1 = (hh + s1 + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      const s0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const t2 = (s0 + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
    h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + hh) | 0;
  }
  update(data) {
    const n = data.length;
    let off = 0;
    this.bytes += n;
    if (this.used > 0) {
      const take = Math.min(64 - this.used, n);
      this.block.set(data.subarray(0, take), this.used);
      this.used += take;
      off = take;
      if (this.used < 64) return;
      this.compress(this.block, 0);
      this.used = 0;
    }
    for (; off + 64 <= n; off += 64) this.compress(data, off);
    if (off < n) {
      this.block.set(data.subarray(off), 0);
      this.used = n - off;
    }
  }
  digest() {
    const bits = this.bytes * 8;
    const pad = new Uint8Array((this.used < 56 ? 64 : 128) - this.used);
    pad[0] = 0x80;
    const view = new DataView(pad.buffer);
    view.setUint32(pad.length - 8, Math.floor(bits / 0x100000000));
    view.setUint32(pad.length - 4, bits >>> 0);
    this.update(pad);
    const out = new Uint8Array(32);
    const outView = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) outView.setInt32(4 * i, this.h[i]);
    return out;
  }
}

/// The most file bytes the page held in its own buffers at once (not counting what it handed
/// to the browser as Blobs).
window.qftMemory = { held: 0, peak: 0 };
function hold(n) {
  qftMemory.held += n;
  qftMemory.peak = Math.max(qftMemory.peak, qftMemory.held);
}

// Request variants, in the order of `enum Request`.
const request = {
  list: (dir) => new Writer().varint(0).str(dir).frame(),
  upload: (name, size) => new Writer().varint(2).str(name).varint(size).frame(),
  resumeDownload: (name, have) => new Writer().varint(7).str(name).varint(have).frame(),
  resume: (from) => new Writer().varint(from).frame(),
  trailer: (sha256) => new Writer().raw(sha256).frame(),
};

// Response variants, in the order of `enum Response`.
function response(r) {
  const variant = r.varint();
  switch (variant) {
    case 0: return { type: 'error', code: r.varint(), message: r.str() };
    case 1: {
      const entries = [];
      for (let n = r.varint(); n > 0; n--) {
        entries.push({
          name: r.str(),
          kind: ['file', 'dir', 'other'][r.varint()] || 'other',
          size: r.varint(),
          modified: r.option(() => r.varint()),
        });
      }
      return { type: 'page', entries, last: r.bool() };
    }
    case 3: return { type: 'ready' };
    case 4: return { type: 'done', sha256: r.take(32) };
    case 9: {
      const size = r.varint();
      const modified = r.option(() => r.varint());
      const chunk = r.varint();
      const hashes = [];
      for (let n = r.varint(); n > 0; n--) hashes.push(r.take(32));
      return { type: 'prefix', size, modified, chunk, hashes };
    }
    default: return { type: 'unexpected', variant };
  }
}

// ---- streams --------------------------------------------------------------------------------

/// Buffered reading of a WebTransport stream.
class Incoming {
  constructor(readable) { this.reader = readable.getReader(); this.chunks = []; this.len = 0; }
  async fill(n) {
    while (this.len < n) {
      let next;
      try {
        next = await this.reader.read();
      } catch (e) {
        throw new Error('the server stopped the transfer');
      }
      if (next.done) return false;
      this.chunks.push(next.value);
      this.len += next.value.length;
    }
    return true;
  }
  /// Up to `max` bytes (at least one), as a view of what arrived: no copy.
  async some(max) {
    if (!(await this.fill(1))) throw new Error('the server ended the transfer early');
    const first = this.chunks[0];
    const n = Math.min(first.length, max);
    if (n === first.length) this.chunks.shift(); else this.chunks[0] = first.subarray(n);
    this.len -= n;
    return first.subarray(0, n);
  }
  async exact(n) {
    if (!(await this.fill(n))) throw new Error('the server ended the stream early');
    const out = new Uint8Array(n);
    for (let at = 0; at < n;) {
      const piece = await this.some(n - at);
      out.set(piece, at);
      at += piece.length;
    }
    return out;
  }
  async frame(max = MAX_FRAME) {
    const head = await this.exact(4);
    const len = new DataView(head.buffer, head.byteOffset, 4).getUint32(0);
    if (len > max) throw new Error('a message from the server is too large');
    return new Reader(await this.exact(len));
  }
  cancel() { this.reader.cancel().catch(() => {}); }
}

/// A refusal to show as it is (the server's sentence, or the page's own check).
class Refused extends Error {}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

function same(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function concat(parts, len) {
  const out = new Uint8Array(len);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

// ---- what the page shows --------------------------------------------------------------------

function status(state, text) {
  const el = $('status');
  el.dataset.state = state;
  el.textContent = text;
}

function progress(done, total) {
  const bar = $('progress');
  if (total === null) { bar.classList.add('hidden'); return; }
  bar.classList.remove('hidden');
  bar.max = Math.max(total, 1);
  bar.value = done;
}

function human(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

function when(secs) {
  if (secs === null) return '';
  return new Date(secs * 1000).toISOString().slice(0, 16).replace('T', ' ');
}

const join = (dir, name) => (dir ? `${dir}/${name}` : name);

// ---- the session ----------------------------------------------------------------------------

const link = new URLSearchParams(location.hash.slice(1));
const share = link.get('t')
  ? { token: link.get('t'), access: link.get('m'), kind: link.get('k'), name: link.get('n') || '' }
  : null;
let wt = null;
let closedReason = null;
let cwd = '';
let busy = false;

function fromBase64Url(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  return Uint8Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
}

async function connect() {
  let config = { port: Number(location.port) || 443, hashes: [] };
  try {
    const answer = await fetch('/config.json', { cache: 'no-store' });
    if (answer.ok) config = await answer.json();
  } catch (e) { /* a page served from elsewhere: the link says all */ }
  const hashes = link.get('h') ? link.get('h').split(',') : config.hashes;
  const port = link.get('p') || config.port;
  const url = `https://${location.hostname}:${port}/${share ? `s/${share.token}` : ''}`;
  const options = {};
  if (hashes.length) {
    options.serverCertificateHashes = hashes.map((h) => ({ algorithm: 'sha-256', value: fromBase64Url(h) }));
  }
  wt = new WebTransport(url, options);
  closedReason = wt.closed.then((info) => info.reason || null, (e) => null);
  wt.closed.then(
    (info) => {
      // A refusal (a link, a limit) is its reason; a shutdown says so; a plain end is quiet.
      if (info.closeCode) status('error', info.reason || 'the server closed the session');
      else if (info.reason && info.reason !== 'bye') status('error', `The server ended the session: ${info.reason}`);
    },
    () => { if (!busy) status('error', 'the connection to the server was lost'); },
  );
  await wt.ready;
}

/// Why a request failed: the session's close reason when the server closed it (a refused link
/// is closed with its reason), else the error itself.
async function explain(e) {
  if (e instanceof Refused) return e.message;
  const reason = await Promise.race([closedReason, new Promise((r) => setTimeout(() => r(null), 1000))]);
  return reason || e.message || String(e);
}

async function exchange(first) {
  const stream = await wt.createBidirectionalStream();
  const writer = stream.writable.getWriter();
  const incoming = new Incoming(stream.readable);
  await writer.write(first);
  return { writer, incoming };
}

/// Ends our side of a stream. The answer says how the request went: once the server has read
/// all it wants it may stop our side, which would fail a close still waiting, harmlessly.
function finish(writer) {
  writer.close().catch(() => {});
}

async function list(dir) {
  const { writer, incoming } = await exchange(request.list(dir));
  finish(writer);
  const entries = [];
  for (;;) {
    const answer = response(await incoming.frame());
    if (answer.type === 'error') throw new Refused(answer.message);
    if (answer.type !== 'page') throw new Error('an unexpected answer from the server');
    entries.push(...answer.entries);
    if (answer.last) return entries;
  }
}

/// Downloads `name` (as the session names it), verifying every piece as it arrives and the
/// whole at the end, and hands the verified bytes to the browser to save as `saveAs`. Each
/// verified piece becomes a Blob at once: the page never holds more than the piece it checks.
async function download(name, saveAs) {
  const { writer, incoming } = await exchange(request.resumeDownload(name, Number.MAX_SAFE_INTEGER));
  const first = response(await incoming.frame());
  if (first.type === 'error') throw new Refused(first.message);
  if (first.type !== 'prefix') throw new Error('an unexpected answer from the server');
  const { size, chunk, hashes } = first;
  // Start from the first byte: the piece hashes cover every whole piece of the file.
  await writer.write(request.resume(0));
  finish(writer);
  const refused = (what) => new Refused(`${saveAs}: ${what} does not match the server's SHA-256; ` +
    'the download was refused and nothing was saved');
  const whole = new Sha256();
  const saved = [];
  let got = 0, index = 0, pending = [], inPiece = 0;
  /// The piece in `pending`, checked (when the server hashed it), hashed into the whole, and
  /// handed to the browser.
  const settle = async () => {
    const bytes = concat(pending, inPiece);
    if (index < hashes.length && !same(await sha256(bytes), hashes[index])) {
      incoming.cancel();
      throw refused(`piece ${index + 1}`);
    }
    whole.update(bytes);
    saved.push(new Blob([bytes]));
    hold(-inPiece);
    pending = []; inPiece = 0; index++;
  };
  progress(0, size);
  while (got < size) {
    const bytes = await incoming.some(Math.min(size - got, chunk - inPiece, BLOCK));
    pending.push(bytes);
    hold(bytes.length);
    inPiece += bytes.length;
    got += bytes.length;
    if (inPiece === chunk || got === size) await settle();
    progress(got, size);
  }
  const trailer = await incoming.frame(64);
  if (!same(whole.digest(), trailer.take(32))) throw refused('the file');
  const blob = new Blob(saved, { type: 'application/octet-stream' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = saveAs;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  return size;
}

/// Uploads `file` as `name`, read a block at a time and hashed as it goes; the server checks
/// the SHA-256 sent after the body before the file appears, and answers with the hash of what it
/// stored, which must be ours.
async function upload(file, name) {
  const size = file.size;
  const { writer, incoming } = await exchange(request.upload(name, size));
  const ready = response(await incoming.frame());
  if (ready.type === 'error') throw new Refused(ready.message);
  if (ready.type !== 'ready') throw new Error('an unexpected answer from the server');
  const whole = new Sha256();
  progress(0, size);
  for (let at = 0; at < size; at += BLOCK) {
    const block = new Uint8Array(await file.slice(at, Math.min(at + BLOCK, size)).arrayBuffer());
    hold(block.length);
    whole.update(block);
    await writer.write(block);
    hold(-block.length);
    progress(at + block.length, size);
  }
  const digest = whole.digest();
  await writer.write(request.trailer(digest));
  finish(writer);
  const done = response(await incoming.frame());
  if (done.type === 'error') throw new Refused(done.message);
  if (done.type !== 'done' || !same(done.sha256, digest)) {
    throw new Refused(`${name}: the server stored something else than was sent`);
  }
  return size;
}

// ---- views ----------------------------------------------------------------------------------

function showWhere(dir) {
  const where = $('where');
  where.textContent = '';
  const top = share ? `${share.name}` : '/';
  const parts = dir ? dir.split('/') : [];
  const crumb = (text, target) => {
    const a = document.createElement('a');
    a.textContent = text;
    a.onclick = () => run(() => browse(target));
    where.appendChild(a);
  };
  crumb(top, '');
  parts.forEach((part, i) => {
    where.appendChild(document.createTextNode(' / '));
    crumb(part, parts.slice(0, i + 1).join('/'));
  });
}

function row(entry, onOpen, onGet) {
  const tr = document.createElement('tr');
  tr.dataset.name = entry.name;
  tr.dataset.kind = entry.kind;
  const name = document.createElement('td');
  name.className = 'name';
  if (entry.kind === 'dir') {
    const a = document.createElement('a');
    a.textContent = `${entry.name}/`;
    a.onclick = onOpen;
    name.appendChild(a);
  } else {
    name.textContent = entry.name;
  }
  const size = document.createElement('td');
  size.className = 'size';
  size.textContent = entry.kind === 'file' && entry.size !== null ? human(entry.size) : '';
  const modified = document.createElement('td');
  modified.textContent = when(entry.modified);
  const action = document.createElement('td');
  if (entry.kind === 'file') {
    const get = document.createElement('button');
    get.className = 'get';
    get.textContent = 'Download';
    get.onclick = onGet;
    action.appendChild(get);
  }
  tr.append(name, size, modified, action);
  return tr;
}

async function browse(dir) {
  const entries = await list(dir);
  cwd = dir;
  showWhere(dir);
  const body = $('entries');
  body.textContent = '';
  for (const entry of entries) {
    const path = join(dir, entry.name);
    body.appendChild(row(entry, () => run(() => browse(path)), () => run(() => get(path, entry.name))));
  }
  $('listing').classList.remove('hidden');
  const count = entries.length === 1 ? '1 entry' : `${entries.length} entries`;
  status('ok', entries.length ? count : 'This directory is empty');
}

async function get(name, saveAs) {
  status('busy', `Downloading ${saveAs}…`);
  const size = await download(name, saveAs);
  status('ok', `Downloaded ${saveAs} (${human(size)}, SHA-256 verified)`);
}

async function put(files) {
  let done = '';
  for (const file of files) {
    const name = join(cwd, file.name);
    status('busy', `Uploading ${file.name}…`);
    const size = await upload(file, name);
    done = `Uploaded ${file.name} (${human(size)}, verified by the server)`;
    status('ok', done);
  }
  if (!share || (share.kind === 'dir' && share.access === 'read')) {
    await browse(cwd);
    status('ok', done);
  }
}

/// Runs one action at a time, showing its failure as one sentence.
async function run(action) {
  if (busy) return;
  busy = true;
  try {
    await action();
  } catch (e) {
    status('error', await explain(e));
  } finally {
    busy = false;
    progress(0, null);
  }
}

async function start() {
  if (!('WebTransport' in window)) {
    status('error', 'This browser has no WebTransport; use a recent Chrome, Edge or Firefox over https or localhost.');
    return;
  }
  try {
    await connect();
  } catch (e) {
    status('error', (await closedReason) || `Cannot reach the qft server: ${e.message || e}`);
    return;
  }
  $('file').onchange = (event) => {
    const files = Array.from(event.target.files);
    event.target.value = '';
    run(() => put(files));
  };
  if (!share) {
    $('drop').classList.remove('hidden');
    await run(() => browse(''));
  } else if (share.access === 'upload') {
    showWhere('');
    $('drop').classList.remove('hidden');
    status('ok', `You can upload files into ${share.name}`);
  } else if (share.kind === 'dir') {
    await run(() => browse(''));
  } else {
    showWhere('');
    const base = share.name.split('/').pop();
    const body = $('entries');
    body.appendChild(row({ name: base, kind: 'file', size: null, modified: null }, null, () => run(() => get('', base))));
    $('listing').classList.remove('hidden');
    status('ok', `${base} is ready to download`);
  }
}

start();
