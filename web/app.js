// qft's browser page: browse, download and upload over WebTransport, speaking the same protocol
// as qft's own client (see src/protocol/mod.rs): one request per bidirectional stream, frames of
// a 4-byte big-endian length and a postcard-encoded message, raw file bodies.
//
// Downloads are verified twice before anything is saved: each whole piece against the SHA-256
// the server sent first (the resume exchange's piece hashes, checked with WebCrypto as the
// bytes arrive), then the whole file against the trailer's SHA-256. Uploads send the file's
// SHA-256 after the body; the server checks it before the file appears under its name.
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
    (info) => { if (info.closeCode) status('error', info.reason || 'the server closed the session'); },
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

/// Downloads `name` (as the session names it), verifying every piece and the whole, and hands
/// the verified bytes to the browser to save as `saveAs`.
async function download(name, saveAs) {
  const { writer, incoming } = await exchange(request.resumeDownload(name, Number.MAX_SAFE_INTEGER));
  const first = response(await incoming.frame());
  if (first.type === 'error') throw new Refused(first.message);
  if (first.type !== 'prefix') throw new Error('an unexpected answer from the server');
  const { size, chunk, hashes } = first;
  // Start from the first byte: the piece hashes cover every whole piece of the file.
  await writer.write(request.resume(0));
  finish(writer);
  const parts = [];
  let got = 0, piece = [], inPiece = 0, index = 0;
  progress(0, size);
  while (got < size) {
    const room = index < hashes.length ? chunk - inPiece : Infinity;
    const bytes = await incoming.some(Math.min(size - got, room, BLOCK));
    parts.push(bytes);
    got += bytes.length;
    if (index < hashes.length) {
      piece.push(bytes);
      inPiece += bytes.length;
      if (inPiece === chunk) {
        if (!same(await sha256(concat(piece, chunk)), hashes[index])) {
          incoming.cancel();
          throw new Refused(`${saveAs}: piece ${index + 1} does not match the server's SHA-256; ` +
            'the download was refused and nothing was saved');
        }
        piece = []; inPiece = 0; index++;
      }
    }
    progress(got, size);
  }
  const trailer = await incoming.frame(64);
  const expected = trailer.take(32);
  const blob = new Blob(parts, { type: 'application/octet-stream' });
  if (!same(await sha256(await blob.arrayBuffer()), expected)) {
    throw new Refused(`${saveAs}: the file does not match the server's SHA-256; ` +
      'the download was refused and nothing was saved');
  }
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = saveAs;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  return size;
}

/// Uploads `file` as `name`; the server checks the SHA-256 sent after the body before the file
/// appears, and answers with the hash of what it stored, which must be ours.
async function upload(file, name) {
  const data = new Uint8Array(await file.arrayBuffer());
  const digest = await sha256(data);
  const { writer, incoming } = await exchange(request.upload(name, data.length));
  const ready = response(await incoming.frame());
  if (ready.type === 'error') throw new Refused(ready.message);
  if (ready.type !== 'ready') throw new Error('an unexpected answer from the server');
  progress(0, data.length);
  for (let at = 0; at < data.length; at += BLOCK) {
    await writer.write(data.slice(at, at + BLOCK));
    progress(Math.min(at + BLOCK, data.length), data.length);
  }
  await writer.write(request.trailer(digest));
  finish(writer);
  const done = response(await incoming.frame());
  if (done.type === 'error') throw new Refused(done.message);
  if (done.type !== 'done' || !same(done.sha256, digest)) {
    throw new Refused(`${name}: the server stored something else than was sent`);
  }
  return data.length;
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
