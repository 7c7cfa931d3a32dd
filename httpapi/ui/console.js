// raftlock console: the on-call view of a raftlock cluster.
//
// Plain JavaScript served by every node from files embedded in raftlockd
// (httpapi/ui.go), with no build step, no dependency and no request to any
// other origin (the Content-Security-Policy forbids it). Every API call goes
// to the node that served the page.
//
// Live updates. A list page reads one page of its list (never the whole
// list: ?limit= and the next cursor) and follows GET /v1/watch?prefix= for
// the names it shows; an opened election also follows GET
// /v1/elections/{name}/observe. An EventSource cannot send Authorization,
// so the streams are read with fetch and a ReadableStream reader, and the
// Server-Sent Events are parsed here (SSEStream). A watch is opened with
// Last-Event-ID set to the node's applied index (GET /v1/status): it then
// sends only the changes after it, not the state of every lock under the
// prefix. Each change the page cares about schedules a re-read of the page
// (debounced, never two at once): the page shows what the API answers, so
// a missed or misread event cannot leave it wrong for long. A stream that
// breaks is shown in a banner and re-opened with a jittered backoff,
// resuming after the last id received; when the node no longer holds the
// events since then ("compacted"), the stream starts again from the
// node's applied index and the page is read again. The cluster page polls
// GET /v1/status every second.
//
// Auth. When GET /v1/auth/whoami says auth is on and the caller has no
// principal, the console asks for a bearer token, keeps it in
// sessionStorage (this tab only) and sends it with every request. A 403 is
// shown as "not permitted". Force-release and close-session are offered to
// admins only: whoami names roles but not their permissions, so the
// console asks GET /v1/auth/users, which only an admin (admin on every
// name) may read. With auth off anyone may do both.
'use strict';

(() => {
  const TOKEN_KEY = 'raftlock.token';
  const PAGE_SIZES = [10, 25, 50, 100, 250, 1000];
  const DEFAULT_LIMIT = 100;
  const RELOAD_DEBOUNCE_MS = 100; // coalesces the changes of a burst into one re-read
  const RETRY_MS = 2000; // a failed read is tried again after this
  const STATUS_EVERY_MS = 1000; // the cluster page's poll
  const STATUS_IDLE_MS = 5000; // the header's poll elsewhere
  const STREAM_IDLE_MS = 35000; // the server sends a keep-alive every 10 s by default
  const BACKOFF_FIRST_MS = 250;
  const BACKOFF_MAX_MS = 5000;
  const MAX_SSE_BUFFER = 64 << 20; // chars of one unfinished line

  const app = {
    token: readToken(),
    auth: null, // GET /v1/auth/whoami: {enabled, principal, roles}
    admin: false,
    page: null, // the mounted page: {stop(), onStatus?(status)}
    status: null, // the last GET /v1/status
    statusTimer: null,
    statusEvery: STATUS_IDLE_MS,
    booted: false,
  };

  // ---------------------------------------------------------------- DOM

  const $ = (sel) => document.querySelector(sel);

  // h builds an element: props sets attributes (class, text, on<event>,
  // data-*), children are nodes or strings (always as text, never HTML).
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = String(v);
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // fill replaces el's children with kids (as h takes them).
  function fill(el, ...kids) {
    el.replaceChildren(...kids.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  }

  function readToken() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch {
      return '';
    }
  }

  function saveToken(t) {
    try {
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // storage refused (private mode): the token lives in memory only
    }
  }

  // ---------------------------------------------------------------- time

  // parseTime reads a Go RFC 3339 time (nanoseconds allowed); NaN for none.
  function parseTime(s) {
    if (!s || s.startsWith('0001-01-01')) return NaN;
    return Date.parse(String(s).replace(/(\.\d{3})\d+/, '$1'));
  }

  // fmtDur formats milliseconds: "850ms", "4.2s", "3m05s", "2h03m", "3d04h".
  function fmtDur(ms) {
    if (!Number.isFinite(ms)) return '';
    const neg = ms < 0;
    ms = Math.abs(ms);
    const p2 = (n) => String(Math.floor(n)).padStart(2, '0');
    let out;
    if (ms < 1000) out = `${Math.round(ms)}ms`;
    else if (ms < 60e3) out = `${(ms / 1000).toFixed(1)}s`;
    else if (ms < 3600e3) out = `${Math.floor(ms / 60e3)}m${p2((ms % 60e3) / 1000)}s`;
    else if (ms < 86400e3) out = `${Math.floor(ms / 3600e3)}h${p2((ms % 3600e3) / 60e3)}m`;
    else out = `${Math.floor(ms / 86400e3)}d${p2((ms % 86400e3) / 3600e3)}h`;
    return neg ? `-${out}` : out;
  }

  function fmtClock(t) {
    const d = new Date(t);
    return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString();
  }

  // since shows the time elapsed since t (RFC 3339), kept current by the
  // ticker; until the time left before it.
  function since(t, cls) {
    const ms = parseTime(t);
    return h('span', { class: cls || 'dur', 'data-since': Number.isNaN(ms) ? null : ms, title: t }, fmtDur(Date.now() - ms));
  }

  function until(t) {
    const ms = parseTime(t);
    return h('span', { class: 'dur', 'data-until': Number.isNaN(ms) ? null : ms, title: t }, fmtDur(ms - Date.now()));
  }

  function tick() {
    const now = Date.now();
    for (const el of document.querySelectorAll('[data-since]')) el.textContent = fmtDur(Math.max(0, now - Number(el.dataset.since)));
    for (const el of document.querySelectorAll('[data-until]')) {
      const left = Number(el.dataset.until) - now;
      el.textContent = left > 0 ? fmtDur(left) : 'due';
    }
  }

  // ---------------------------------------------------------------- banner and live state

  const problems = new Map(); // source → text
  const streams = new Map(); // SSEStream → 'up' | 'down' | 'connecting'

  function setProblem(key, text) {
    if (text) problems.set(key, text);
    else problems.delete(key);
    const b = $('#banner');
    b.textContent = [...problems.values()].join(' · ');
    b.hidden = problems.size === 0;
  }

  function setStream(s, st, why) {
    if (st) streams.set(s, st);
    else streams.delete(s);
    setProblem(s.key, st === 'down' ? why : null);
    renderLive();
  }

  // renderLive shows in the header whether every stream of the page is up.
  function renderLive() {
    const live = $('#live');
    const states = [...streams.values()];
    live.classList.toggle('up', states.length > 0 && states.every((x) => x === 'up'));
    live.classList.toggle('down', states.includes('down'));
    live.textContent = states.length === 0 ? 'polling' : states.includes('down') ? 'reconnecting' : states.every((x) => x === 'up') ? 'live' : 'connecting';
    live.title = states.length === 0 ? 'This page reads the node every second' : 'Live updates (Server-Sent Events)';
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  const isForbidden = (e) => e instanceof ApiError && e.status === 403;

  function authHeaders(extra) {
    const hd = Object.assign({}, extra);
    if (app.token) hd.Authorization = `Bearer ${app.token}`;
    return hd;
  }

  async function errorOf(res) {
    let body = null;
    try {
      body = await res.json();
    } catch {
      // not JSON
    }
    const e = (body && body.error) || {};
    return new ApiError(res.status, e.code || '', e.message || `${res.status} ${res.statusText}`);
  }

  // api sends one request and returns its JSON; it throws an ApiError for
  // an error answer (a 401 also signs out), or fetch's error when the node
  // cannot be reached.
  async function api(method, path, body) {
    const init = { method, headers: authHeaders({ Accept: 'application/json' }), cache: 'no-store' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    if (!res.ok) {
      const err = await errorOf(res);
      if (res.status === 401 && app.booted) signOut('The node refused the token (401): sign in again.');
      throw err;
    }
    const text = await res.text();
    return text ? JSON.parse(text) : null;
  }

  // A name goes into a path as one segment: '/' becomes %2F, which the
  // server decodes (httpapi/doc.go, "Lock names with '/'").
  const seg = (name) => encodeURIComponent(name);

  function errText(e) {
    if (e instanceof ApiError) return e.code ? `${e.code}: ${e.message}` : e.message;
    return (e && e.message) || String(e);
  }

  // ---------------------------------------------------------------- Server-Sent Events over fetch

  let streamSeq = 0;

  // SSEStream reads one Server-Sent Events stream with fetch, parses it as
  // the HTML standard says (fields event, data, id; comments; LF, CR or
  // CRLF line ends), and hands each message to o.onMessage. It reconnects
  // after a failure with a jittered backoff, sending Last-Event-ID: the id
  // of the last message received, or o.initialId() when it has none (the
  // watch starts after the node's applied index). o.onResync runs whenever
  // it connects without an id it received (first connection, or after a
  // "compacted" error): changes may have been missed, re-read;
  // o.onReconnect when it is up again after a failure. A refusal ends it
  // (o.onRefused: 403 not permitted, 400 invalid), a 401 signs out.
  class SSEStream {
    constructor(o) {
      this.o = o;
      this.key = `stream${++streamSeq}`;
      this.lastId = '';
      this.stopped = false;
      this.ctrl = null;
      this.idle = null;
      this.idleFired = false;
    }

    start() {
      setStream(this, 'connecting');
      this.run();
      return this;
    }

    stop() {
      this.stopped = true;
      clearTimeout(this.idle);
      if (this.ctrl) this.ctrl.abort();
      setStream(this, null);
    }

    async run() {
      let delay = 0;
      while (!this.stopped) {
        let r;
        try {
          r = await this.connect();
        } catch (e) {
          r = { why: this.idleFired ? `nothing received for ${STREAM_IDLE_MS / 1000}s` : errText(e) };
        }
        clearTimeout(this.idle);
        if (this.stopped || r.done) return;
        if (r.resync) {
          delay = 0;
          continue;
        }
        delay = r.lasted > 3000 ? BACKOFF_FIRST_MS : Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_FIRST_MS, delay * 2));
        const wait = Math.round(delay * (0.75 + Math.random() * 0.5));
        setStream(this, 'down', `Live updates lost (${this.o.label}: ${r.why}); reconnecting in ${fmtDur(wait)}`);
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }

    armIdle() {
      clearTimeout(this.idle);
      this.idle = setTimeout(() => {
        this.idleFired = true;
        if (this.ctrl) this.ctrl.abort();
      }, STREAM_IDLE_MS);
    }

    async connect() {
      this.idleFired = false;
      if (!this.lastId) {
        if (this.o.initialId) this.lastId = await this.o.initialId();
        if (this.o.onResync) this.o.onResync();
      }
      if (this.stopped) return { done: true };
      const ctrl = (this.ctrl = new AbortController());
      const headers = authHeaders({ Accept: 'text/event-stream' });
      if (this.lastId) headers['Last-Event-ID'] = this.lastId;
      this.armIdle();
      const res = await fetch(this.o.url(), { headers, signal: ctrl.signal, cache: 'no-store' });
      if (!res.ok) {
        const err = await errorOf(res);
        if (res.status === 401) {
          signOut('The node refused the token (401): sign in again.');
          return { done: true };
        }
        if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
          // Refused (403 not permitted, 400 a bad prefix): asking again
          // changes nothing.
          setStream(this, null);
          if (this.o.onRefused) this.o.onRefused(err);
          return { done: true };
        }
        return { why: errText(err) };
      }
      const opened = Date.now();
      const wasDown = streams.get(this) === 'down';
      setStream(this, 'up');
      if (wasDown && this.o.onReconnect) this.o.onReconnect();
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      let scan = 0;
      let msg = { event: '', data: [], id: null };
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        this.armIdle();
        buf += dec.decode(value, { stream: true });
        let start = 0;
        let i = scan;
        let pendingCR = false;
        for (; i < buf.length; i++) {
          const c = buf.charCodeAt(i);
          if (c !== 10 && c !== 13) continue;
          if (c === 13 && i + 1 === buf.length) {
            pendingCR = true; // CR LF may be split between two reads
            break;
          }
          const line = buf.slice(start, i);
          if (c === 13 && buf.charCodeAt(i + 1) === 10) i++;
          start = i + 1;
          if (line === '') {
            const r = this.dispatch(msg);
            msg = { event: '', data: [], id: null };
            if (r === 'resync') {
              ctrl.abort();
              return { resync: true };
            }
          } else if (line.charCodeAt(0) !== 58) {
            // not a comment (": keep-alive")
            const k = line.indexOf(':');
            const field = k < 0 ? line : line.slice(0, k);
            let v = k < 0 ? '' : line.slice(k + 1);
            if (v.charCodeAt(0) === 32) v = v.slice(1);
            if (field === 'event') msg.event = v;
            else if (field === 'data') msg.data.push(v);
            else if (field === 'id' && !v.includes('\0')) msg.id = v;
          }
        }
        buf = buf.slice(start);
        scan = pendingCR ? buf.length - 1 : buf.length;
        if (buf.length > MAX_SSE_BUFFER) throw new Error('a stream line is too long');
      }
      return { why: 'the node ended the stream', lasted: Date.now() - opened };
    }

    // dispatch handles one complete message; 'resync' when the stream must
    // start again without Last-Event-ID.
    dispatch(msg) {
      if (msg.data.length > 0) {
        const m = { event: msg.event || 'message', data: msg.data.join('\n'), id: msg.id };
        if (m.event === 'error') {
          let e = {};
          try {
            e = JSON.parse(m.data).error || {};
          } catch {
            // not JSON
          }
          if (e.code === 'compacted') {
            this.lastId = '';
            return 'resync';
          }
          throw new Error(e.message || m.data);
        }
        try {
          this.o.onMessage(m);
        } catch (cause) {
          // A bug of the console: say so, and read the stream again.
          console.error('raftlock console: a stream message could not be handled', cause);
          throw new Error(`a message could not be handled (${cause})`);
        }
      }
      // The last event ID is kept once the message it came with is handled.
      if (msg.id !== null) this.lastId = msg.id;
      return '';
    }
  }

  // watch follows GET /v1/watch?prefix= from the node's applied index:
  // onChange gets the events of each change message. onResync runs when
  // changes may have been missed, and when the stream is back after a
  // failure (the page may show an error meanwhile).
  function watch(prefix, onChange, onResync, onRefused) {
    return new SSEStream({
      label: `watch ${prefix ? `"${prefix}"` : 'of every name'}`,
      url: () => `/v1/watch?${new URLSearchParams({ prefix })}`,
      initialId: async () => {
        const applied = (await api('GET', '/v1/status')).applied;
        return applied > 0 ? String(applied) : ''; // nothing applied: the state is empty
      },
      onMessage: (m) => {
        if (m.event === 'change') onChange(JSON.parse(m.data).events || []);
      },
      onResync,
      onReconnect: onResync,
      onRefused,
    }).start();
  }

  // Which pages an event concerns, by its type's family.
  function family(type) {
    if (type.startsWith('lock_')) return 'locks';
    if (type.startsWith('permit_')) return 'semaphores';
    if (type.startsWith('session_')) return 'sessions';
    if (/^(elected|proclaimed|resigned|leader_expired|no_leader|candidate_)/.test(type)) return 'elections';
    return ''; // unknown: concerns every page
  }

  // ---------------------------------------------------------------- re-reads

  // reloader runs fn when asked, at most one run at a time: asks while it
  // runs make one more run after it. soon() waits RELOAD_DEBOUNCE_MS first
  // to coalesce a burst, later() RETRY_MS; an earlier ask moves a pending
  // run forward, never back.
  function reloader(fn) {
    let timer = null;
    let due = 0;
    let running = false;
    let again = false;
    let stopped = false;
    const run = async () => {
      timer = null;
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        await fn();
      } finally {
        running = false;
        if (again && !stopped) {
          again = false;
          schedule(0);
        }
      }
    };
    const schedule = (ms) => {
      if (stopped) return;
      const at = Date.now() + ms;
      if (timer !== null) {
        if (due <= at) return;
        clearTimeout(timer);
      }
      due = at;
      timer = setTimeout(run, ms);
    };
    return {
      now: () => schedule(0),
      soon: () => schedule(RELOAD_DEBOUNCE_MS),
      later: () => schedule(RETRY_MS),
      stop() {
        stopped = true;
        clearTimeout(timer);
      },
    };
  }

  // ---------------------------------------------------------------- confirmation and messages

  function confirmAction(title, text, okLabel) {
    const d = $('#confirm');
    $('#confirm-title').textContent = title;
    $('#confirm-text').textContent = text;
    const ok = $('#confirm-ok');
    ok.textContent = okLabel;
    return new Promise((resolve) => {
      const done = (v) => {
        ok.onclick = null;
        $('#confirm-cancel').onclick = null;
        d.oncancel = null;
        if (d.open) d.close();
        resolve(v);
      };
      ok.onclick = () => done(true);
      $('#confirm-cancel').onclick = () => done(false);
      d.oncancel = (e) => {
        e.preventDefault();
        done(false);
      };
      d.showModal();
    });
  }

  function flash(box, text, isError) {
    box.replaceChildren(h('div', { class: `notice${isError ? ' error' : ''}`, role: 'status' }, text));
    setTimeout(() => {
      if (box.firstChild && box.firstChild.textContent === text) box.replaceChildren();
    }, 8000);
  }

  // ---------------------------------------------------------------- small renderers

  const none = (text) => h('span', { class: 'none' }, text || '—');
  const sess = (id) => h('span', { class: 'session', title: 'session ID' }, `#${id}`);
  const owner = (o) => (o ? h('span', { class: 'owner' }, o) : null);
  const modeTag = (m) => (m && m !== 'exclusive' ? h('span', { class: `mode ${m}` }, m) : null);
  const num = (v) => (v === undefined || v === null ? '' : String(v));

  function person(p, extra) {
    return h('li', { 'data-session': p.session }, sess(p.session), ' ', owner(p.owner), modeTag(p.mode), extra);
  }

  function forbidden(e) {
    return h('div', { class: 'notice forbidden', 'data-forbidden': '' }, `Not permitted: ${e.message}`);
  }

  function table(cls, heads, rows, emptyText) {
    if (rows.length === 0) return h('div', { class: 'notice empty' }, emptyText);
    return h('table', { class: cls }, h('thead', null, h('tr', null, heads.map((x) => h('th', { class: x.cls }, x.text || x)))), h('tbody', null, rows));
  }

  function shorten(v, n) {
    return v.length > n ? `${v.slice(0, n)}…` : v;
  }

  // ---------------------------------------------------------------- paged lists

  // cursors remembers, per list and filter, the cursors of the pages before
  // the one shown (for "Previous").
  const cursors = new Map();

  // listPage mounts a paged, filtered, live list. o: title, page (route
  // name), path (API), key (the list's field in the answer), filter
  // {param, label, placeholder}, watchPrefix(filter) (a prefix, or null for
  // no watch), kind (the event family it shows), pollMs (optional), heads(),
  // row(item, ctx), empty.
  function listPage(main, params, o) {
    const filter = params.get(o.filter.param) || '';
    const limit = PAGE_SIZES.includes(Number(params.get('limit'))) ? Number(params.get('limit')) : DEFAULT_LIMIT;
    const after = params.get('after') || '';
    const trailKey = `${o.page}\n${o.filter.param}=${filter}\n${limit}`;
    const trail = cursors.get(trailKey) || [];
    if (!after) trail.length = 0;
    cursors.set(trailKey, trail);

    const go = (f, lim, aft) => {
      const q = new URLSearchParams();
      if (f) q.set(o.filter.param, f);
      if (lim !== DEFAULT_LIMIT) q.set('limit', String(lim));
      if (aft) q.set('after', aft);
      const qs = q.toString();
      location.hash = `#/${o.page}${qs ? `?${qs}` : ''}`;
    };

    const input = h('input', { name: o.filter.param, value: filter, placeholder: o.filter.placeholder, spellcheck: 'false', size: 28 });
    const size = h('select', { name: 'limit' }, PAGE_SIZES.map((n) => h('option', { value: n, selected: n === limit }, String(n))));
    const form = h(
      'form',
      {
        class: 'toolbar',
        onsubmit: (e) => {
          e.preventDefault();
          go(input.value.trim(), Number(size.value), '');
        },
      },
      h('label', null, o.filter.label, input),
      h('label', null, 'Per page', size),
      h('button', { type: 'submit' }, 'Show'),
    );
    const note = h('div', { class: 'hint' });
    const msgs = h('div');
    const content = h('div', { class: 'content' });
    const pager = h('div', { class: 'pager' });
    main.append(h('h1', null, o.title), form, msgs, note, content, pager);

    const ctx = {
      reload: () => r.now(),
      msgs,
    };
    let stream = null;
    const timers = [];
    let loads = 0;

    async function load() {
      const q = new URLSearchParams();
      if (filter) q.set(o.filter.param, filter);
      q.set('limit', String(limit));
      if (after) q.set('after', after);
      let data;
      try {
        data = await api('GET', `${o.path}?${q}`);
      } catch (e) {
        if (isForbidden(e)) {
          content.replaceChildren(forbidden(e));
          pager.replaceChildren();
          return;
        }
        if (e instanceof ApiError && e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429) {
          content.replaceChildren(h('div', { class: 'notice error' }, `Refused: ${errText(e)}`));
          pager.replaceChildren();
          return;
        }
        content.replaceChildren(h('div', { class: 'notice error' }, `Could not read: ${errText(e)} (trying again)`));
        r.later();
        return;
      }
      const items = data[o.key] || [];
      content.replaceChildren(table(o.page, o.heads(), items.map((it) => o.row(it, ctx)), after ? 'Nothing on this page.' : o.empty));
      content.dataset.loaded = String(++loads); // how many reads the page has shown
      const first = h('button', { type: 'button', class: 'small', disabled: !after, onclick: () => go(filter, limit, '') }, '« First');
      const prev = h(
        'button',
        {
          type: 'button',
          class: 'small prev',
          disabled: !after || trail.length === 0,
          onclick: () => go(filter, limit, trail.pop() || ''),
        },
        '‹ Previous',
      );
      const next = h(
        'button',
        {
          type: 'button',
          class: 'small next',
          disabled: !data.next,
          onclick: () => {
            trail.push(after);
            go(filter, limit, data.next);
          },
        },
        'Next ›',
      );
      pager.replaceChildren(first, prev, next, h('span', null, `${items.length} shown${data.next ? ', more follow' : ''}${after ? ` (after ${after})` : ''}`));
    }
    const r = reloader(load);
    r.now();

    const prefix = o.watchPrefix(filter);
    if (prefix !== null) {
      stream = watch(
        prefix,
        (events) => {
          if (events.some((ev) => !family(ev.type) || family(ev.type) === o.kind || o.kind === 'sessions')) r.soon();
        },
        () => r.soon(),
        (e) => {
          if (!isForbidden(e)) {
            note.textContent = `No live updates: the node refused the watch (${errText(e)}).`;
            return;
          }
          note.textContent = `Live updates not permitted (${e.message}): refreshing every 5 s instead.`;
          timers.push(setInterval(() => r.now(), 5000));
        },
      );
    }
    if (o.pollMs) timers.push(setInterval(() => r.now(), o.pollMs));

    return {
      stop() {
        r.stop();
        if (stream) stream.stop();
        timers.forEach(clearInterval);
      },
    };
  }

  // ---------------------------------------------------------------- pages

  function locksPage(main, params) {
    const forceRelease = async (l, ctx) => {
      const who = l.holders.map((x) => `session ${x.session}${x.owner ? ` (${x.owner})` : ''} with token ${x.token}`).join(', ');
      const ok = await confirmAction('Force-release this lock?', `Lock "${l.name}" is held by ${who}. Force-releasing takes it away whoever holds it: the holder's token becomes stale and the first waiter is granted the lock.`, 'Force-release');
      if (!ok) return;
      try {
        const g = await api('POST', `/v1/locks/${seg(l.name)}/release`, { force: true });
        flash(ctx.msgs, `Force-released "${l.name}" (token ${g.token}).`);
      } catch (e) {
        flash(ctx.msgs, `Force-release of "${l.name}" failed: ${isForbidden(e) ? `not permitted (${e.message})` : errText(e)}`, true);
      }
      ctx.reload();
    };
    return listPage(main, params, {
      title: 'Locks',
      page: 'locks',
      path: '/v1/locks',
      key: 'locks',
      kind: 'locks',
      filter: { param: 'prefix', label: 'Name prefix', placeholder: 'jobs/' },
      watchPrefix: (f) => f,
      empty: 'No lock is held or waited for under this prefix.',
      heads: () => ['Lock', 'Holder', 'Owner', { text: 'Token', cls: 'num' }, 'Held for', 'Waiters (in order)'].concat(app.admin ? [''] : []),
      row: (l, ctx) => {
        const holders = l.holders || [];
        const cells = (f) => (holders.length ? holders.map((x) => h('div', null, f(x))) : null);
        let holderCell = cells((x) => [sess(x.session), modeTag(x.mode)]);
        if (!holderCell) holderCell = l.delayed_until ? h('span', { class: 'tag warn' }, `nobody: lock-delay for `, until(l.delayed_until)) : none('free');
        const waiters = l.waiters || [];
        return h(
          'tr',
          { 'data-name': l.name },
          h('td', { class: 'name mono' }, l.name),
          h('td', { class: 'holder' }, holderCell),
          h('td', { class: 'owner' }, cells((x) => x.owner || '')),
          h('td', { class: 'token num' }, cells((x) => num(x.token))),
          h('td', { class: 'held' }, cells((x) => since(x.since))),
          h('td', { class: 'waiters' }, waiters.length ? h('ol', { class: 'people waiters' }, waiters.map((w) => person(w, [' waiting ', since(w.since)]))) : none('none')),
          app.admin ? h('td', null, holders.length ? h('button', { type: 'button', class: 'small danger force-release', onclick: () => forceRelease(l, ctx) }, 'Force-release') : null) : null,
        );
      },
    });
  }

  function semaphoresPage(main, params) {
    return listPage(main, params, {
      title: 'Semaphores',
      page: 'semaphores',
      path: '/v1/semaphores',
      key: 'semaphores',
      kind: 'semaphores',
      filter: { param: 'prefix', label: 'Name prefix', placeholder: 'pool/' },
      watchPrefix: (f) => f,
      empty: 'No semaphore has a permit held or waited for under this prefix.',
      heads: () => ['Semaphore', { text: 'Permits held', cls: 'num' }, 'Holders (session, owner, token, held for)', 'Waiters (in order)'],
      row: (s) => {
        const holders = s.holders || [];
        const waiters = s.waiters || [];
        return h(
          'tr',
          { 'data-name': s.name },
          h('td', { class: 'name mono' }, s.name),
          h('td', { class: 'num' }, `${holders.length} / ${s.limit}`),
          h('td', { class: 'holders' }, holders.length ? h('ul', { class: 'people' }, holders.map((x) => person(x, [' token ', h('span', { class: 'token' }, num(x.token)), ' held ', since(x.since)]))) : none('none')),
          h('td', { class: 'waiters' }, waiters.length ? h('ol', { class: 'people waiters' }, waiters.map((w) => person(w, [' waiting ', since(w.since)]))) : none('none')),
        );
      },
    });
  }

  function sessionsPage(main, params) {
    const closeSession = async (s, ctx) => {
      const holds = [...(s.locks || []), ...(s.permits || [])];
      const ok = await confirmAction('Close this session?', `Session ${s.id}${s.owner ? ` (${s.owner})` : ''} will be closed: ${holds.length ? `it releases ${holds.join(', ')}` : 'it holds nothing'}, and leaves every queue and election it is in. Its client learns of it at its next keep-alive.`, 'Close session');
      if (!ok) return;
      try {
        await api('DELETE', `/v1/sessions/${seg(s.id)}`);
        flash(ctx.msgs, `Closed session ${s.id}.`);
      } catch (e) {
        flash(ctx.msgs, `Closing session ${s.id} failed: ${isForbidden(e) ? `not permitted (${e.message})` : errText(e)}`, true);
      }
      ctx.reload();
    };
    const list = (xs) => (xs && xs.length ? h('ul', { class: 'people' }, xs.map((x) => h('li', { class: 'mono' }, x))) : none(''));
    return listPage(main, params, {
      title: 'Sessions',
      page: 'sessions',
      path: '/v1/sessions',
      key: 'sessions',
      kind: 'sessions',
      filter: { param: 'owner', label: 'Owner (exact)', placeholder: 'host-a/pid-42' },
      watchPrefix: () => '', // session events have no name: only a watch of every name has them
      pollMs: 3000, // keep-alives move deadlines without an event
      empty: 'No session.',
      heads: () => ['Session', 'Owner', 'TTL', 'Expires in', 'Locks held', 'Waiting for', 'Permits', 'Semaphore waits', 'Elections'].concat(app.admin ? [''] : []),
      row: (s, ctx) =>
        h(
          'tr',
          { 'data-session': s.id },
          h('td', { class: 'session' }, `#${s.id}`, s.bound ? h('div', { class: 'hint' }, `ephemeral, for ${s.bound}`) : null),
          h('td', { class: 'owner' }, s.owner || ''),
          h('td', { class: 'num' }, s.ttl),
          h('td', { class: 'num' }, until(s.deadline)),
          h('td', null, list(s.locks)),
          h('td', null, list(s.waiting)),
          h('td', null, list(s.permits)),
          h('td', null, list(s.sem_waiting)),
          h('td', null, list(s.campaigns)),
          app.admin ? h('td', null, h('button', { type: 'button', class: 'small danger close-session', onclick: () => closeSession(s, ctx) }, 'Close')) : null,
        ),
    });
  }

  function electionsPage(main, params) {
    const name = params.get('name');
    if (name) return electionPage(main, name);
    return listPage(main, params, {
      title: 'Elections',
      page: 'elections',
      path: '/v1/elections',
      key: 'elections',
      kind: 'elections',
      filter: { param: 'prefix', label: 'Name prefix', placeholder: 'services/' },
      watchPrefix: (f) => f,
      empty: 'No election has a leader or candidates under this prefix.',
      heads: () => ['Election', 'Leader', 'Value', { text: 'Term', cls: 'num' }, 'Leading for', 'Candidates (in order)', ''],
      row: (e) => {
        const l = e.leader;
        const cands = e.candidates || [];
        return h(
          'tr',
          { 'data-name': e.name },
          h('td', { class: 'name mono' }, e.name),
          h('td', { class: 'leader' }, l ? [sess(l.session), ' ', owner(l.owner)] : none('nobody')),
          h('td', { class: 'value mono', title: l ? l.value : null }, l ? shorten(l.value, 80) : ''),
          h('td', { class: 'num term' }, l ? num(l.term) : ''),
          h('td', null, l ? since(l.since) : ''),
          h('td', null, cands.length ? h('ol', { class: 'people' }, cands.map((c) => person(c, [' ', h('span', { class: 'mono' }, shorten(c.value, 40)), ' waiting ', since(c.since)]))) : none('none')),
          h('td', null, h('a', { href: `#/elections?name=${encodeURIComponent(e.name)}`, class: 'observe' }, 'Observe')),
        );
      },
    });
  }

  // electionPage shows one election: its leader as observe reports it
  // (every change, in order, kept in a history), and its candidates,
  // re-read on each change under its name (watch).
  function electionPage(main, name) {
    const head = h('div', { class: 'cards' });
    const msgs = h('div');
    const cands = h('div', { id: 'election-candidates' });
    const changes = h('ol', { class: 'history', reversed: true });
    main.append(
      h('p', null, h('a', { href: '#/elections' }, '← Elections')),
      h('h1', null, 'Election ', h('span', { class: 'mono' }, name)),
      msgs,
      head,
      h('h2', null, 'Candidates (in order)'),
      cands,
      h('h2', null, 'Leader changes seen (newest first)'),
      changes,
    );
    const card = (label, value, id) => h('div', { class: 'card' }, h('div', { class: 'label' }, label), h('div', { class: 'value', id }, value));
    const showLeader = (l, rev) => {
      head.replaceChildren(
        card('Leader', l ? [sess(l.session), ' ', owner(l.owner)] : none('nobody'), 'election-leader'),
        card('Term', l ? num(l.term) : '—', 'election-term'),
        card('Leading for', l ? since(l.since) : '—'),
        card('As of revision', num(rev)),
      );
      head.append(h('div', { class: 'card' }, h('div', { class: 'label' }, 'Value'), h('div', { class: 'mono', id: 'election-value' }, l ? shorten(l.value, 400) : '—')));
    };
    const load = async () => {
      try {
        const e = await api('GET', `/v1/elections/${seg(name)}`);
        const cs = e.candidates || [];
        cands.replaceChildren(cs.length ? h('ol', { class: 'people' }, cs.map((c) => person(c, [' ', h('span', { class: 'mono' }, shorten(c.value, 80)), ' waiting ', since(c.since)]))) : none('none'));
      } catch (e) {
        if (isForbidden(e)) cands.replaceChildren(forbidden(e));
        else {
          cands.replaceChildren(h('div', { class: 'notice error' }, `Could not read: ${errText(e)} (trying again)`));
          r.later();
        }
      }
    };
    const r = reloader(load);
    r.now();
    const observe = new SSEStream({
      label: `observe "${name}"`,
      url: () => `/v1/elections/${seg(name)}/observe`,
      onMessage: (m) => {
        if (m.event !== 'state' && m.event !== 'change') return;
        const le = JSON.parse(m.data);
        showLeader(le.leader, le.revision);
        const l = le.leader;
        changes.prepend(
          h('li', null, `${fmtClock(Date.now())} revision ${le.revision}: ${(le.changes || [le.type]).join(', ')}`, l ? ` → session ${l.session}${l.owner ? ` (${l.owner})` : ''}, term ${l.term}, value "${shorten(l.value, 60)}"` : ' → nobody leads'),
        );
        while (changes.children.length > 50) changes.lastChild.remove();
        r.soon();
      },
      onReconnect: () => r.soon(),
      onRefused: (e) => head.replaceChildren(isForbidden(e) ? forbidden(e) : h('div', { class: 'notice error' }, `Refused: ${errText(e)}`)),
    }).start();
    const candidates = watch(
      name,
      (events) => {
        if (events.some((ev) => ev.name === name)) r.soon();
      },
      () => r.soon(),
      () => {},
    );
    return {
      stop() {
        r.stop();
        observe.stop();
        candidates.stop();
      },
    };
  }

  function clusterPage(main) {
    const body = h('div');
    main.append(h('h1', null, 'Cluster'), body);
    const card = (label, value, id, cls) => h('div', { class: 'card' }, h('div', { class: 'label' }, label), h('div', { class: `value ${cls || ''}`, id }, value));
    const render = (st) => {
      if (st instanceof Error) {
        body.replaceChildren(isForbidden(st) ? forbidden(st) : h('div', { class: 'notice error' }, `Cannot read this node's status: ${errText(st)}`));
        return;
      }
      const members = st.members || [];
      const withProgress = members.some((m) => m.progress);
      const leaderLink = st.leader_url && /^https?:\/\//.test(st.leader_url) && st.leader !== st.id ? h('a', { href: `${st.leader_url}/ui/#/cluster` }, 'open the console on the leader') : null;
      const rows = members.map((m) => {
        const p = m.progress;
        const roles = [];
        if (m.id === st.leader) roles.push(h('span', { class: 'tag leader' }, 'leader'));
        else roles.push(h('span', { class: 'tag' }, m.learner ? 'learner' : 'follower'));
        if (m.id === st.id) roles.push(' ', h('span', { class: 'tag self' }, 'this node'));
        return h(
          'tr',
          { 'data-member': m.id },
          h('td', { class: 'num mono' }, String(m.id)),
          h('td', { class: 'role' }, roles),
          h('td', { class: 'mono' }, m.client_url || ''),
          h('td', { class: 'mono' }, m.peer_url || ''),
          h('td', { class: 'num' }, p ? num(p.match) : '—'),
          h('td', { class: 'num' }, p ? num(p.behind) : '—'),
          h('td', null, p ? h('span', { class: p.reachable ? 'tag ok' : 'tag bad' }, p.reachable ? 'reachable' : 'unreachable') : '—'),
        );
      });
      const alarms = st.alarms || [];
      fill(
        body,
        h(
          'div',
          { class: 'cards' },
          card('Leader', st.leader ? String(st.leader) : 'none', 'cluster-leader', st.leader ? '' : 'error'),
          card('Term', num(st.term), 'cluster-term'),
          card('Commit', num(st.commit)),
          card('Applied', num(st.applied)),
          card('This node', String(st.id), 'cluster-self'),
          card('Ready', st.ready ? 'yes' : 'no', 'cluster-ready', st.ready ? '' : 'error'),
          card('Cluster version', num(st.cluster_version)),
        ),
        h(
          'table',
          { class: 'kv' },
          h(
            'tbody',
            null,
            h('tr', null, h('th', null, 'Cluster ID'), h('td', { class: 'mono' }, st.cluster_id || '')),
            h('tr', null, h('th', null, 'Leader URL'), h('td', { class: 'mono' }, st.leader_url || 'unknown')),
            h('tr', null, h('th', null, 'Alarms'), h('td', { id: 'cluster-alarms' }, alarms.length ? alarms.map((a) => h('div', { class: 'tag bad' }, `member ${a.member}: ${a.alarm}`)) : none('none'))),
            h('tr', null, h('th', null, 'ReadIndex requests'), h('td', null, `${num(st.read_index_requests)} (retries ${num(st.read_index_retries)})`)),
            h('tr', null, h('th', null, 'Dropped peer messages'), h('td', null, num(st.dropped_peer_messages))),
          ),
        ),
        h('h2', null, 'Members'),
        h(
          'table',
          { class: 'members' },
          h('thead', null, h('tr', null, ['ID', 'Role', 'Client URL', 'Peer URL', 'Match', 'Behind', 'Reachable'].map((x) => h('th', null, x)))),
          h('tbody', null, rows),
        ),
        withProgress ? null : h('p', { class: 'hint' }, 'Replication progress (match, behind, reachable) is known only to the leader', leaderLink ? [': ', leaderLink, '.'] : '.'),
        h('p', { class: 'hint' }, `Read from member ${st.id} at ${fmtClock(Date.now())}, every second.`),
      );
    };
    if (app.status) render(app.status);
    setStatusEvery(STATUS_EVERY_MS);
    return {
      onStatus: render,
      stop() {
        setStatusEvery(STATUS_IDLE_MS);
      },
    };
  }

  const PAGES = { cluster: clusterPage, locks: locksPage, semaphores: semaphoresPage, sessions: sessionsPage, elections: electionsPage };

  // ---------------------------------------------------------------- node status (header, cluster page)

  // pollStatus reads GET /v1/status now, then every app.statusEvery; one
  // read at a time (a call during a read makes one more right after it).
  let statusRunning = false;
  let statusAgain = false;
  async function pollStatus() {
    if (statusRunning) {
      statusAgain = true;
      return;
    }
    statusRunning = true;
    clearTimeout(app.statusTimer);
    app.statusTimer = null;
    try {
      app.status = await api('GET', '/v1/status');
      setProblem('status', null);
      const st = app.status;
      $('#node-info').textContent = `member ${st.id} · ${st.leader ? `leader ${st.leader}` : 'no leader'} · term ${st.term}${st.ready ? '' : ' · not ready'}`;
      if (app.page && app.page.onStatus) app.page.onStatus(st);
    } catch (e) {
      if (app.booted && !isForbidden(e)) setProblem('status', `Cannot reach this node (${errText(e)}): retrying`);
      if (app.booted && app.page && app.page.onStatus) app.page.onStatus(e instanceof Error ? e : new Error(String(e)));
    } finally {
      statusRunning = false;
    }
    if (!app.booted) return;
    if (statusAgain) {
      statusAgain = false;
      pollStatus();
      return;
    }
    app.statusTimer = setTimeout(pollStatus, app.statusEvery);
  }

  function setStatusEvery(ms) {
    app.statusEvery = ms;
    if (app.booted) pollStatus();
  }

  // ---------------------------------------------------------------- navigation

  let mounts = 0;

  function mount() {
    if (!app.booted) return;
    if (app.page) app.page.stop();
    app.page = null;
    const hash = location.hash.startsWith('#/') ? location.hash.slice(2) : 'locks';
    const qi = hash.indexOf('?');
    let name = qi < 0 ? hash : hash.slice(0, qi);
    const params = new URLSearchParams(qi < 0 ? '' : hash.slice(qi + 1));
    if (!PAGES[name]) name = 'locks';
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === name);
    document.body.dataset.page = name;
    document.body.dataset.mounts = String(++mounts);
    const main = $('#main');
    main.replaceChildren();
    app.page = PAGES[name](main, params);
  }

  // ---------------------------------------------------------------- sign in and out

  function showLogin(message) {
    app.booted = false;
    if (app.page) app.page.stop();
    app.page = null;
    clearTimeout(app.statusTimer);
    for (const s of [...streams.keys()]) s.stop();
    problems.clear();
    setProblem('x', null);
    $('#main').replaceChildren();
    $('#main').hidden = true;
    $('#login').hidden = false;
    $('#signout').hidden = true;
    $('#who').textContent = '';
    $('#node-info').textContent = '';
    const err = $('#login-error');
    err.textContent = message || '';
    err.hidden = !message;
    $('#token-input').value = '';
    $('#token-input').focus();
  }

  function signOut(message) {
    app.token = '';
    saveToken('');
    showLogin(message);
  }

  let bootTimer = null;

  async function boot() {
    clearTimeout(bootTimer);
    let who;
    try {
      who = await api('GET', '/v1/auth/whoami');
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        app.token = '';
        saveToken('');
        showLogin('The node did not accept that token (401).');
        return;
      }
      setProblem('boot', `Cannot reach this node (${errText(e)}): retrying`);
      bootTimer = setTimeout(boot, RETRY_MS);
      return;
    }
    setProblem('boot', null);
    app.auth = who;
    if (who.enabled && !who.principal) {
      showLogin('');
      return;
    }
    app.admin = !who.enabled;
    if (who.enabled) {
      try {
        await api('GET', '/v1/auth/users'); // only an admin may read it
        app.admin = true;
      } catch (e) {
        app.admin = false;
        if (!isForbidden(e)) setProblem('boot', `Could not tell whether ${who.principal} is an admin (${errText(e)}): admin actions hidden`);
      }
    }
    $('#who').textContent = who.enabled ? `${who.principal}${who.roles && who.roles.length ? ` (${who.roles.join(', ')})` : ''}${app.admin ? ' · admin rights' : ''}` : 'auth off';
    $('#signout').hidden = !who.enabled;
    $('#login').hidden = true;
    $('#main').hidden = false;
    app.booted = true;
    pollStatus();
    mount();
  }

  function init() {
    renderLive();
    $('#login-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = $('#token-input').value.trim();
      if (!t) return;
      app.token = t;
      saveToken(t);
      $('#login').hidden = true;
      boot();
    });
    $('#signout').addEventListener('click', () => signOut(''));
    window.addEventListener('hashchange', mount);
    setInterval(tick, 1000);
    if (!location.hash) history.replaceState(null, '', '#/locks');
    boot();
  }

  init();
})();
