/* tg_tape_write_html's page script: steps through a tape written by tapegrad.
 *
 * Everything it shows comes from the JSON in <script id="tape-data"> (its fields are
 * described at the top of autograd/html.c) and from the SVG graph Graphviz drew, whose
 * nodes are titled "r3" (record 3) and "s0" (source 0: a leaf or a constant), its
 * edges "r2->r3". Three modes:
 *   backward  step k shows the k-th record backward ran: the gradient it read (its
 *             output's, complete by then) and the share it added to each input, with
 *             how the shares a value receives add up;
 *   forward   step k shows record k-1 computing its output from its inputs;
 *   flow      every scope's mean |gradient| on one log scale.
 * State is (mode, step), kept in the address's #fragment so that a link can point at a
 * step. Nothing is fetched: the page works from a file, offline. */
'use strict';

(function () {
  const tape = JSON.parse(document.getElementById('tape-data').textContent);
  const recs = tape.records, srcs = tape.sources, order = tape.order;
  const $ = (id) => document.getElementById(id);

  /* ---------------------------------------------------------------- the ops, in words */

  /* What each built-in op computes, forward and backward, in one line each; g is the
   * gradient of the record's output (dL/d(out)). A user's op shows its name only. */
  const OPS = {
    add: ['out = a + b (broadcasting)', 'grad a += g, summed over the axes a was broadcast along; grad b likewise'],
    sub: ['out = a - b (broadcasting)', 'grad a += g;  grad b += -g (each summed over its broadcast axes)'],
    mul: ['out = a * b (broadcasting)', 'grad a += g * b;  grad b += g * a (each summed over its broadcast axes)'],
    div: ['out = a / b (broadcasting)', 'grad a += g / b;  grad b += -g * a / b^2'],
    maximum: ['out = max(a, b)', 'g goes to the larger input (half to each on a tie)'],
    neg: ['out = -x', 'grad x += -g'],
    add_scalar: ['out = x + s', 'grad x += g'],
    mul_scalar: ['out = x * s', 'grad x += g * s'],
    pow_scalar: ['out = x^p', 'grad x += g * p * x^(p-1)'],
    exp: ['out = exp(x)', 'grad x += g * out'],
    log: ['out = log(x)', 'grad x += g / x'],
    sqrt: ['out = sqrt(x)', 'grad x += g / (2 out)'],
    rsqrt: ['out = 1 / sqrt(x)', 'grad x += g * (-1/2) out^3'],
    tanh: ['out = tanh(x)', 'grad x += g * (1 - out^2)'],
    sigmoid: ['out = 1 / (1 + exp(-x))', 'grad x += g * out * (1 - out)'],
    relu: ['out = max(x, 0)', 'grad x += g where x > 0, else 0'],
    leaky_relu: ['out = x if x > 0 else slope * x', 'grad x += g where x > 0, else slope * g'],
    relu_: ['out = max(x, 0), written over x', 'grad x += g where out > 0, else 0'],
    leaky_relu_: ['out = x if x > 0 else slope * x, written over x', 'grad x += g where out > 0, else slope * g'],
    clamp: ['out = min(max(x, lo), hi)', 'grad x += g where lo < x < hi, else 0'],
    dropout: ['out = x * mask / (1 - p)', 'grad x += g * mask / (1 - p), the same mask'],
    sum: ['out = sum of x over the axes', 'grad x += g, copied back along the summed axes'],
    mean: ['out = mean of x over the axes', 'grad x += g / n, copied back along the averaged axes'],
    var: ['out = variance of x over the axes', 'grad x += g * 2 (x - mean) / (n - correction)'],
    max: ['out = max of x over the axes', 'g goes to the maximal elements (shared on ties)'],
    logsumexp: ['out = log(sum exp(x)) over the axes', 'grad x += g * softmax(x)'],
    log_softmax: ['out = x - logsumexp(x) along the axis', 'grad x += g - softmax(x) * (sum of g along the axis)'],
    gather: ['out[i] = x[i, index[i]]', 'grad x[i, index[i]] += g[i], 0 elsewhere'],
    nll_loss: ['loss = -(1/N) sum_i logp[i, label_i]', 'grad logp[i, label_i] += -g / N, 0 elsewhere'],
    matmul: ['out = a @ b', 'grad a += g @ b^T;  grad b += a^T @ g'],
    reshape: ['out = x with a new shape (same elements)', 'grad x += g reshaped back'],
    permute: ['out = x with its axes reordered', 'grad x += g with the axes put back'],
    transpose: ['out = x with two axes swapped', 'grad x += g swapped back'],
    slice: ['out = a slice of x', 'grad x += g inside the slice, 0 elsewhere'],
    select: ['out = one index of x along an axis', 'grad x += g at that index, 0 elsewhere'],
    expand: ['out = x broadcast to a larger shape', 'grad x += g summed over the expanded axes'],
    squeeze: ['out = x without a size-1 axis', 'grad x += g with the axis put back'],
    unsqueeze: ['out = x with a new size-1 axis', 'grad x += g without it'],
    concat: ['out = the inputs joined along an axis', 'each input gets its part of g'],
    im2col: ['cols = every kh x kw patch of x as a column', 'grad x += col2im(g): each patch element adds back where it came from'],
    avg_pool2d: ['out = the mean of each window', 'grad x += g / (window size), spread over the window'],
    max_pool2d: ['out = the max of each window', 'grad x += g at each window\'s maximum'],
    global_avg_pool2d: ['out[n,c] = mean over H, W of x[n,c]', 'grad x += g / (H W), spread over the plane'],
    conv2d: ['out = conv(x, w) + b (one fused op)', 'grad x += conv_transpose(g, w);  grad w += sum over images and positions of g * patches of x;  grad b += sum of g'],
    batch_norm2d: ['out = (x - mean) / sqrt(var + eps) * gamma + beta, per channel', 'grad gamma += sum g * xhat;  grad beta += sum g;  grad x += gamma / sigma * (g - mean(g) - xhat mean(g xhat))'],
  };

  /* ---------------------------------------------------------------- numbers */

  const num = (v) => (typeof v === 'string' ? Number(v) : v); // "NaN", "Infinity" in v
  /* 6 significant digits, as a reader compares them with printed output */
  function fmt(v) {
    v = num(v);
    if (v === null || v === undefined) return '\u2014';
    if (!Number.isFinite(v)) return String(v);
    if (v === 0) return '0';
    const a = Math.abs(v);
    return a >= 1e-4 && a < 1e6 ? v.toPrecision(6) : v.toExponential(5);
  }
  /* 4 significant digits in exponent form, as tg_tape_print's columns print them (C's
   * %.3e: "1.214e-01", the exponent signed and of two digits at least) */
  function fmtE(v) {
    if (v === null || v === undefined) return '\u2014';
    if (!Number.isFinite(v)) return String(v);
    const [m, e] = v.toExponential(3).split('e');
    const x = Math.abs(Number(e));
    return m + 'e' + (Number(e) < 0 ? '-' : '+') + (x < 10 ? '0' : '') + x;
  }
  const pct = (f) => (f === null || f === undefined ? '\u2014' : (100 * f).toFixed(1) + '%');
  const shapeStr = (s) => '[' + s.join(',') + ']';
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k !== null && k !== undefined) e.append(k);
    return e;
  };

  /* ---------------------------------------------------------------- the tape, indexed */

  /* A value is "r3" (record 3's output) or "s0" (source 0). */
  const isRec = (ref) => ref[0] === 'r';
  const idOf = (ref) => Number(ref.slice(1));
  const valueOf = (ref) => (isRec(ref) ? recs[idOf(ref)].value : srcs[idOf(ref)].value);
  const gradOf = (ref) => (isRec(ref) ? recs[idOf(ref)].grad : srcs[idOf(ref)].grad);
  const shapeOf = (ref) => (isRec(ref) ? recs[idOf(ref)].shape : srcs[idOf(ref)].shape);
  function label(ref) {
    if (isRec(ref)) return '#' + idOf(ref) + ' ' + recs[idOf(ref)].op;
    const s = srcs[idOf(ref)];
    return s.kind === 'leaf' ? s.name || '(unnamed leaf)' : 'const ' + shapeStr(s.shape);
  }

  /* stepOf[id]: the backward step (1..K) at which record id ran, 0 if it did not run */
  const stepOf = recs.map(() => 0);
  order.forEach((id, k) => { stepOf[id] = k + 1; });
  /* readers[ref]: the records that read the value, with the input slot */
  const readers = {};
  /* sharesTo[ref]: the shares the value received, in the order backward added them */
  const sharesTo = {};
  recs.forEach((r, id) => r.inputs.forEach((ref, i) => {
    if (ref) (readers[ref] = readers[ref] || []).push({ id, input: i });
  }));
  order.forEach((id, k) => recs[id].shares.forEach((s) => {
    const ref = recs[id].inputs[s.input];
    /* a share equal to its input's whole gradient is written as that input's reference */
    const grad = typeof s.grad === 'string' ? gradOf(s.grad) : s.grad;
    (sharesTo[ref] = sharesTo[ref] || []).push({ id, step: k + 1, input: s.input, grad });
  }));

  /* ---------------------------------------------------------------- tensors, drawn */

  /* Numbers laid out by shape: a row for a vector, a matrix for 2-D, rows [i,j,...] of
   * the last axis above that. Each cell carries its flat index and full value. */
  function numbersTable(values, shape, extraRows) {
    const t = el('table', { class: 'numbers num' });
    const cols = shape.length ? shape[shape.length - 1] : 1;
    const lead = shape.slice(0, -1);
    const rows = Math.max(1, values.length / Math.max(cols, 1));
    if (shape.length >= 1 && cols > 1) {
      const head = el('tr', {}, el('th'));
      for (let j = 0; j < cols; j++) head.append(el('th', { text: String(j) }));
      t.append(head);
    }
    const rowName = (r) => {
      if (lead.length === 0) return shape.length === 0 ? '' : '';
      const idx = [];
      for (let d = lead.length - 1, q = r; d >= 0; d--) { idx.unshift(q % lead[d]); q = Math.floor(q / lead[d]); }
      return '[' + idx.join(',') + ']';
    };
    for (let r = 0; r < rows; r++) {
      const tr = el('tr', {}, el('th', { text: rowName(r) }));
      for (let j = 0; j < cols && r * cols + j < values.length; j++) {
        const flat = r * cols + j, v = values[flat];
        tr.append(el('td', { 'data-flat': String(flat), 'data-v': String(num(v)), title: String(num(v)), text: fmt(v) }));
      }
      t.append(tr);
    }
    for (const extra of extraRows || []) t.append(extra);
    return t;
  }

  /* A histogram of counts over [lo, hi], with the ends labelled. */
  function histogram(counts, lo, hi) {
    const W = 260, H = 56, n = counts.length, top = Math.max(...counts, 1);
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('class', 'hist');
    svg.setAttribute('width', W);
    svg.setAttribute('height', H + 14);
    counts.forEach((c, b) => {
      const h = c ? Math.max(1, (H * c) / top) : 0;
      const rect = document.createElementNS(ns, 'rect');
      rect.setAttribute('x', (b * W) / n);
      rect.setAttribute('y', H - h);
      rect.setAttribute('width', Math.max(1, W / n - 1));
      rect.setAttribute('height', h);
      const tip = document.createElementNS(ns, 'title');
      tip.textContent = c + ' in [' + fmt(lo + ((hi - lo) * b) / n) + ', ' + fmt(lo + ((hi - lo) * (b + 1)) / n) + ')';
      rect.append(tip);
      svg.append(rect);
    });
    [[0, 'start', lo], [W, 'end', hi]].forEach(([x, anchor, v]) => {
      const t = document.createElementNS(ns, 'text');
      t.setAttribute('x', x);
      t.setAttribute('y', H + 11);
      t.setAttribute('text-anchor', anchor);
      t.textContent = fmt(v);
      svg.append(t);
    });
    return svg;
  }

  /* Statistics of a tensor; `g` names its elements ("g" for a gradient, "x" for a value). */
  function statsLine(T, g) {
    const p = el('div', { class: 'stats num' });
    const add = (name, v) => p.append(el('span', {}, name + ' ', el('b', { text: v })));
    add('elements', String(T.n));
    if (T.mean_abs !== undefined) {
      add('mean |' + g + '|', fmtE(T.mean_abs));
      add('rms', fmtE(T.rms));
      add('max |' + g + '|', fmtE(T.max_abs));
    }
    add('min', fmt(T.min));
    add('max', fmt(T.max));
    add('mean', fmt(T.mean));
    if (T.zero_frac !== undefined) add('zeros', pct(T.zero_frac));
    if (T.nonfinite) add('NaN/Inf', String(T.nonfinite));
    return p;
  }

  /* A tensor: its numbers when the page has them, else statistics and a histogram. */
  function tensorView(T, shape, g) {
    const box = el('div', { class: 'tensor' });
    if (!T) {
      box.append(el('p', { class: 'hint', text: 'none' }));
      return box;
    }
    if (T.v) box.append(numbersTable(T.v, shape));
    else box.append(statsLine(T, g), T.hist ? histogram(T.hist, T.min, T.max) : null);
    if (T.v && T.v.length > 1 && T.mean_abs !== undefined)
      box.append(el('div', { class: 'hint' }, 'mean |' + g + '| ' + fmtE(T.mean_abs) + ', max |' + g + '| ' + fmtE(T.max_abs)));
    return box;
  }

  /* A titled box; ref names the value it is about ("r3", "s0"), for links and tests. */
  function block(kind, ref, title, ...kids) {
    const attrs = { class: 'tensor-block ' + kind };
    if (ref) Object.assign(attrs, { 'data-ref': ref, 'data-label': label(ref) });
    return el('div', attrs, el('div', { class: 'label' }, title), ...kids);
  }

  /* ---------------------------------------------------------------- the steps */

  function opLines(r) {
    const f = OPS[r.op];
    if (!f) return el('p', { class: 'hint', text: r.op + ': an op of its own (a tg_op); see its definition' });
    return el('div', {}, el('div', { class: 'formula', text: 'forward:  ' + f[0] }), el('br'),
      el('div', { class: 'formula', text: 'backward: ' + f[1] }));
  }

  function recordHeading(r, id, what) {
    return el('div', {},
      el('h2', { text: what + ': #' + id + ' ' + r.op }),
      el('p', { class: 'hint', text: 'scope ' + (r.scope || '(root)') + ' \u00b7 output ' + shapeStr(r.shape) + ' ' + r.dtype }));
  }

  /* How the share adds up with the others the value receives: for numbers, the running
   * sum; for statistics, which share of how many it is. */
  function accumulation(ref, share) {
    const all = sharesTo[ref] || [];
    const j = all.indexOf(share), n = all.length;
    const box = el('div', { class: 'acc' });
    const from = all.map((s) => '#' + s.id + ' (step ' + s.step + ')').join(', ');
    if (n === 1) {
      box.append(el('p', {}, el('span', { class: 'tag', text: 'only share' }),
        ' ' + label(ref) + ' is read once, so this share is its whole gradient.'));
      return box;
    }
    box.append(el('p', {}, el('span', { class: 'tag', text: 'share ' + (j + 1) + ' of ' + n }),
      ' ' + label(ref) + ' is read ' + n + ' times; its gradient is the sum of the shares from ' + from + '.'));
    if (share.grad && share.grad.v) {
      const before = share.grad.v.map(() => 0);
      for (let k = 0; k < j; k++) all[k].grad.v.forEach((v, e) => { before[e] += num(v); });
      const after = before.map((v, e) => v + num(share.grad.v[e]));
      const shape = shapeOf(ref);
      const beforeTable = numbersTable(before, shape), afterTable = numbersTable(after, shape);
      beforeTable.classList.add('before');
      afterTable.classList.add('after');
      box.append(el('div', { class: 'hint', text: 'before (shares 1..' + j + '):' }), beforeTable,
        el('div', { class: 'hint', text: '+ this share = after ' + (j + 1) + ' of ' + n + (j + 1 === n ? ' (complete: the gradient of ' + label(ref) + ')' : '') + ':' }),
        afterTable);
    } else if (j + 1 === n && gradOf(ref)) {
      box.append(el('div', { class: 'hint', text: 'the sum of all ' + n + ' shares, the gradient of ' + label(ref) + ':' }),
        statsLine(gradOf(ref), 'g'));
    }
    return box;
  }

  function explainBackward(k) {
    const box = el('div');
    if (order.length === 0) {
      box.append(el('p', { text: 'No backward on this tape: there are no gradients to step through. Run tg_backward (with gradients kept, the default) before tg_tape_write_html.' }));
      return box;
    }
    if (k === 0) {
      const loss = order[0];
      box.append(el('h2', { text: 'Before backward' }),
        el('p', {}, 'Backward visits the records from the last to the first, ' + order.length + ' of them here. It starts at #' + loss + ' ' + recs[loss].op +
          ', the loss L, whose gradient is seeded with dL/dL = 1. Each step reads a record\'s output gradient, which is complete by then, ' +
          'and adds a share to the gradient of each input that needs one.'),
        el('p', { class: 'hint', text: 'Press "step \u25b6" or the right arrow.' }));
      return box;
    }
    const id = order[k - 1], r = recs[id], ref = 'r' + id;
    box.append(recordHeading(r, id, 'Backward step ' + k + ' of ' + order.length), opLines(r));
    const rd = readers[ref] || [];
    const why = k === 1 ? 'the loss: backward starts here with dL/dL = 1.'
      : 'complete: ' + (rd.length === 1 ? 'the one record that reads it, ' : 'all ' + rd.length + ' records that read it, ') +
        rd.map((x) => '#' + x.id + (stepOf[x.id] ? ' (step ' + stepOf[x.id] + ')' : ' (no backward)')).join(', ') + ', ran before this step.';
    box.append(block('read', ref, 'reads g = grad #' + id + ' = dL/d(output of #' + id + '), ' + why, tensorView(r.grad, r.shape, 'g')));
    r.inputs.forEach((inRef, i) => {
      const title = 'input ' + i + ': ' + (inRef ? label(inRef) : 'none');
      if (!inRef || !r.needs[i]) {
        box.append(block('', inRef, title + ' needs no gradient (a constant, or made from constants only): nothing added'));
        return;
      }
      const shares = (sharesTo[inRef] || []).filter((s) => s.id === id && s.input === i);
      if (shares.length === 0) {
        box.append(block('', inRef, title + ': no share added'));
        return;
      }
      for (const s of shares)
        box.append(block('share', inRef, 'adds to ' + title + ' this share:', tensorView(s.grad, shapeOf(inRef), 'g'), accumulation(inRef, s)));
    });
    return box;
  }

  function explainForward(k) {
    const box = el('div');
    if (k === 0) {
      const leaves = srcs.filter((s) => s.kind === 'leaf').map((s) => s.name);
      box.append(el('h2', { text: 'Before the first record' }),
        el('p', { text: 'The forward pass runs the records in order, ' + recs.length + ' of them; each computes its output from values made before it. ' +
          'It starts from the leaves (parameters: ' + (leaves.join(', ') || 'none') + ') and ' + (srcs.length - leaves.length) + ' constants (data).' }),
        el('p', { class: 'hint', text: 'Press "step \u25b6" or the right arrow.' }));
      return box;
    }
    const id = k - 1, r = recs[id];
    box.append(recordHeading(r, id, 'Forward step ' + k + ' of ' + recs.length), opLines(r));
    r.inputs.forEach((ref, i) => {
      if (ref) box.append(block('', ref, 'input ' + i + ': ' + label(ref) + ' ' + shapeStr(shapeOf(ref)), tensorView(valueOf(ref), shapeOf(ref), 'x')));
    });
    box.append(block('value', 'r' + id, 'computes the output of #' + id + ':', tensorView(r.value, r.shape, 'x')));
    return box;
  }

  /* ---------------------------------------------------------------- the graph */

  const graphBox = $('graph');
  const svg = graphBox.querySelector('svg');
  const nodes = {}; // ref -> <g class="node">
  const edges = []; // {from, to, g}
  if (svg) {
    for (const g of svg.querySelectorAll('g.node')) {
      const t = g.querySelector('title');
      if (t) nodes[t.textContent.trim()] = g;
    }
    for (const g of svg.querySelectorAll('g.edge')) {
      const t = g.querySelector('title');
      const m = t && /^(\w+)->(\w+)$/.exec(t.textContent.trim());
      if (m) edges.push({ from: m[1], to: m[2], g });
    }
  } else {
    graphBox.append(el('p', { class: 'nograph', text: 'No graph in this page.' }));
  }
  const vb = svg && svg.viewBox.baseVal;
  let zoom = 1;
  function setZoom(z) {
    if (!svg || !vb) return;
    zoom = Math.min(4, Math.max(0.05, z));
    svg.setAttribute('width', vb.width * zoom);
    svg.setAttribute('height', vb.height * zoom);
  }
  const fitZoom = () => (vb ? Math.min(graphBox.clientWidth / vb.width, graphBox.clientHeight / vb.height) : 1);
  $('zoom-in').onclick = () => setZoom(zoom * 1.25);
  $('zoom-out').onclick = () => setZoom(zoom / 1.25);
  $('zoom-fit').onclick = () => setZoom(fitZoom());

  function centre(box, target) {
    const a = box.getBoundingClientRect(), b = target.getBoundingClientRect();
    box.scrollLeft += b.left + b.width / 2 - (a.left + a.width / 2);
    box.scrollTop += b.top + b.height / 2 - (a.top + a.height / 2);
  }

  /* ---------------------------------------------------------------- the list */

  const rows = [];
  const tbody = document.querySelector('#records tbody');
  recs.forEach((r, id) => {
    const s = r.grad;
    const tr = el('tr', { 'data-id': String(id) },
      el('td', { class: 'num', text: '#' + id }), el('td', { text: r.op }), el('td', { text: r.scope || '-' }),
      el('td', { class: 'mono', text: shapeStr(r.shape) + ' ' + r.dtype }),
      el('td', { class: 'mono', text: r.inputs.map((ref) => (ref ? (isRec(ref) ? ref.replace('r', '#') : label(ref)) : '-')).join(', ') }),
      el('td', { class: 'num', text: s ? fmtE(s.mean_abs) : '-' }), el('td', { class: 'num', text: s ? fmtE(s.rms) : '-' }),
      el('td', { class: 'num', text: s ? fmtE(s.max_abs) : '-' }), el('td', { class: 'num', text: s ? pct(s.zero_frac) : '-' }),
      el('td', { class: 'num', text: stepOf[id] ? String(stepOf[id]) : '-' }));
    tr.onclick = () => goToRecord(id);
    rows.push(tr);
    tbody.append(tr);
  });

  /* ---------------------------------------------------------------- painting a step */

  const state = { mode: 'backward', step: 0 };
  const steps = () => (state.mode === 'backward' ? order.length : state.mode === 'forward' ? recs.length : 0);
  let marked = [];
  function mark(e, cls) {
    if (!e) return;
    e.classList.add(cls);
    marked.push([e, cls]);
  }

  function paint() {
    for (const [e, cls] of marked) e.classList.remove(cls);
    marked = [];
    const k = state.step, back = state.mode === 'backward';
    let cur = null;
    if (state.mode !== 'flow') {
      /* what has not happened yet is pale */
      recs.forEach((r, id) => {
        const later = back ? stepOf[id] > k : id >= k;
        if (later) { mark(nodes['r' + id], 'pending'); mark(rows[id], 'pending'); }
      });
      if (back) srcs.forEach((s, i) => {
        const sh = sharesTo['s' + i];
        if (sh && sh[0].step > k) mark(nodes['s' + i], 'pending');
      });
      if (k > 0) {
        const id = back ? order[k - 1] : k - 1, r = recs[id];
        cur = 'r' + id;
        mark(nodes[cur], 'cur');
        mark(rows[id], 'cur');
        r.inputs.forEach((ref, i) => {
          if (!ref || (back && !r.needs[i])) return;
          const cls = back ? 'target' : 'reads';
          mark(nodes[ref], cls);
          if (isRec(ref)) mark(rows[idOf(ref)], cls);
        });
        for (const e of edges) if (e.to === cur) mark(e.g, back ? 'flowing' : 'feeding');
      }
      $('explain').replaceChildren(back ? explainBackward(k) : explainForward(k));
      const n = steps();
      $('position').textContent = (back ? 'backward' : 'forward') + ' step ' + k + ' of ' + n;
      $('step-first').disabled = $('step-prev').disabled = k === 0;
      $('step-next').disabled = $('step-last').disabled = k >= n;
      if (cur && nodes[cur]) centre(graphBox, nodes[cur]);
      if (cur) {
        const box = $('records-scroll'), row = rows[idOf(cur)];
        const a = box.getBoundingClientRect(), b = row.getBoundingClientRect();
        if (b.top < a.top + 30 || b.bottom > a.bottom) box.scrollTop += b.top - a.top - a.height / 2;
      }
    }
    document.querySelector('main').classList.toggle('flow-mode', state.mode === 'flow');
    $('flow').hidden = state.mode !== 'flow';
    for (const b of document.querySelectorAll('#modes button')) b.classList.toggle('active', b.dataset.mode === state.mode);
    const frag = '#' + state.mode + (state.mode === 'flow' ? '' : '/' + k);
    if (location.hash !== frag) history.replaceState(null, '', frag);
  }

  function go(mode, step) {
    state.mode = mode;
    state.step = Math.max(0, Math.min(step, steps()));
    paint();
  }
  const move = (d) => go(state.mode, state.step + d);

  function goToRecord(id) {
    if (state.mode === 'forward') go('forward', id + 1);
    else if (stepOf[id]) go('backward', stepOf[id]);
    else go('forward', id + 1); /* backward did not run it: show how it was computed */
  }
  for (const [ref, g] of Object.entries(nodes)) {
    g.addEventListener('click', () => {
      if (isRec(ref)) goToRecord(idOf(ref));
      else if (sharesTo[ref] && state.mode === 'backward') go('backward', sharesTo[ref][0].step);
    });
  }

  $('step-first').onclick = () => go(state.mode, 0);
  $('step-prev').onclick = () => move(-1);
  $('step-next').onclick = () => move(1);
  $('step-last').onclick = () => go(state.mode, steps());
  for (const b of document.querySelectorAll('#modes button')) b.onclick = () => go(b.dataset.mode, 0);
  document.addEventListener('keydown', (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey || state.mode === 'flow') return;
    const act = { ArrowRight: () => move(1), ArrowLeft: () => move(-1), Home: () => go(state.mode, 0), End: () => go(state.mode, steps()) }[e.key];
    if (act) {
      e.preventDefault();
      act();
    }
  });

  /* ---------------------------------------------------------------- gradient flow */

  /* One colour scale for every cell: pale (vanishing) to dark red (large), over whole
   * decades from the smallest mean |gradient| shown to the largest. */
  const RAMP = [[255, 247, 236], [253, 212, 158], [252, 141, 89], [215, 48, 31], [127, 0, 0]];
  function colour(t) {
    t = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
    const i = Math.min(RAMP.length - 2, Math.floor(t)), f = t - i;
    const c = RAMP[i].map((a, j) => Math.round(a + (RAMP[i + 1][j] - a) * f));
    return 'rgb(' + c.join(',') + ')';
  }

  function buildFlow() {
    /* scopes in the order of their first record; a weight belongs to the scope its
     * name starts with ("block_0_0/conv_0/weight" to "block_0_0/conv_0"), and a
     * scope's output is its last record's: the rules of the study's gradflow.csv */
    const groups = new Map();
    recs.forEach((r, id) => {
      if (!groups.has(r.scope)) groups.set(r.scope, { scope: r.scope, ids: [], params: [] });
      const g = groups.get(r.scope);
      g.ids.push(id);
      g.last = id;
    });
    srcs.forEach((s, i) => {
      if (s.kind !== 'leaf' || !s.name) return;
      const cut = s.name.lastIndexOf('/');
      const g = groups.get(cut < 0 ? '' : s.name.slice(0, cut));
      if (g) g.params.push(i);
    });
    const mean = (T) => (T && T.mean_abs !== null && T.mean_abs !== undefined ? T.mean_abs : null);
    const weightOf = (g) => g.params.find((i) => srcs[i].name.endsWith('/weight'));
    const logs = [];
    const note = (v) => { if (v > 0) logs.push(Math.log10(v)); };
    for (const g of groups.values()) {
      const w = weightOf(g);
      if (w !== undefined) note(mean(srcs[w].grad));
      for (const id of g.ids) note(mean(recs[id].grad));
      for (const i of g.params) note(mean(srcs[i].grad));
    }
    const lo = logs.length ? Math.floor(Math.min(...logs)) : -10;
    const hi = logs.length ? Math.max(lo + 1, Math.ceil(Math.max(...logs))) : 0;
    const scaled = (v) => (Math.log10(v) - lo) / (hi - lo);

    function cell(cls, v) {
      const td = el('td', { class: 'cell num ' + cls });
      if (v === null) { td.textContent = '-'; return td; }
      td.textContent = fmtE(v);
      td.setAttribute('data-v', String(v));
      td.title = v > 0 ? 'log10 = ' + Math.log10(v).toFixed(2) : 'exactly 0';
      if (v > 0) {
        const t = scaled(v);
        td.style.background = colour(t);
        td.style.color = t > 0.6 ? 'white' : 'black';
      }
      return td;
    }
    function bar(values) { /* [[value, filled]]: dots on the log axis */
      const ns = 'http://www.w3.org/2000/svg', W = 400, H = 14;
      const s = document.createElementNS(ns, 'svg');
      s.setAttribute('width', W);
      s.setAttribute('height', H);
      const axis = document.createElementNS(ns, 'line');
      Object.entries({ x1: 0, x2: W, y1: H / 2, y2: H / 2, stroke: '#d9dde6' }).forEach(([k, v]) => axis.setAttribute(k, v));
      s.append(axis);
      for (const [v, filled] of values) {
        if (!(v > 0)) continue;
        const c = document.createElementNS(ns, 'circle');
        const t = scaled(v);
        Object.entries({ cx: 5 + t * (W - 10), cy: H / 2, r: 4.5, fill: filled ? colour(t) : 'white', stroke: '#333' })
          .forEach(([k, val]) => c.setAttribute(k, val));
        s.append(c);
      }
      return s;
    }

    const body = document.querySelector('#flow-table tbody');
    for (const g of groups.values()) {
      const w = weightOf(g);
      const wv = w !== undefined ? mean(srcs[w].grad) : null, ov = mean(recs[g.last].grad);
      const tr = el('tr', { class: 'scope-row', 'data-scope': g.scope },
        el('td', { class: 'name', text: '\u25b8 ' + (g.scope || '(root)') }), el('td', { class: 'num', text: String(g.ids.length) }),
        el('td', { class: 'mono', text: w !== undefined ? srcs[w].name.slice(srcs[w].name.lastIndexOf('/') + 1) : '' }),
        cell('w', wv), cell('out', ov), el('td', { class: 'bar' }, bar([[wv, true], [ov, false]])));
      const inner = [];
      for (const id of g.ids) {
        const r = recs[id];
        inner.push(el('tr', { class: 'prim', 'data-id': String(id) }, el('td', { class: 'name', text: '#' + id + ' ' + r.op }),
          el('td', { class: 'mono', text: shapeStr(r.shape) }), el('td', { text: 'output' }), el('td'),
          cell('out', mean(r.grad)), el('td', { class: 'bar' }, bar([[mean(r.grad), false]]))));
      }
      for (const i of g.params) {
        const s = srcs[i];
        inner.push(el('tr', { class: 'prim' }, el('td', { class: 'name', text: s.name }), el('td', { class: 'mono', text: shapeStr(s.shape) }),
          el('td', { text: 'leaf' }), cell('w', mean(s.grad)), el('td'), el('td', { class: 'bar' }, bar([[mean(s.grad), true]]))));
      }
      inner.forEach((x) => { x.hidden = true; });
      tr.onclick = () => {
        const open = inner.length && inner[0].hidden;
        inner.forEach((x) => { x.hidden = !open; });
        tr.firstChild.textContent = (open ? '\u25be ' : '\u25b8 ') + (g.scope || '(root)');
      };
      body.append(tr, ...inner);
    }

    /* the legend: the ramp with a tick every decade (or every few) */
    const ns = 'http://www.w3.org/2000/svg', W = 420;
    const leg = document.createElementNS(ns, 'svg');
    leg.setAttribute('width', W + 20);
    leg.setAttribute('height', 34);
    const grad = document.createElementNS(ns, 'linearGradient');
    grad.id = 'ramp';
    RAMP.forEach((c, i) => {
      const stop = document.createElementNS(ns, 'stop');
      stop.setAttribute('offset', i / (RAMP.length - 1));
      stop.setAttribute('stop-color', 'rgb(' + c.join(',') + ')');
      grad.append(stop);
    });
    const defs = document.createElementNS(ns, 'defs');
    defs.append(grad);
    const rect = document.createElementNS(ns, 'rect');
    Object.entries({ x: 10, y: 2, width: W, height: 14, fill: 'url(#ramp)', stroke: '#999' }).forEach(([k, v]) => rect.setAttribute(k, v));
    leg.append(defs, rect);
    const every = Math.max(1, Math.ceil((hi - lo) / 12));
    for (let d = lo; d <= hi; d += every) {
      const t = document.createElementNS(ns, 'text');
      t.setAttribute('x', 10 + ((d - lo) / (hi - lo)) * W);
      t.setAttribute('y', 30);
      t.setAttribute('text-anchor', 'middle');
      t.textContent = '1e' + d;
      leg.append(t);
    }
    $('legend').append(el('span', { text: 'mean |gradient|, log scale:' }), leg,
      el('span', { class: 'hint', text: 'pale: vanishing; dark: large. ' + (tape.fused
        ? 'Layers are fused here (one record each); with tg_tape_set_fused(tp, false) a row opens into its primitives.'
        : 'Fusion is off: each row opens into the primitives of its layer.') }));
  }

  /* ---------------------------------------------------------------- start */

  const leaves = srcs.filter((s) => s.kind === 'leaf').length;
  const count = (n, one, many) => n + ' ' + (n === 1 ? one : many);
  $('summary').textContent = count(recs.length, 'record', 'records') + ', ' + count(leaves, 'leaf', 'leaves') + ', ' +
    count(srcs.length - leaves, 'constant', 'constants') + '; ' +
    (tape.backward ? 'backward ran ' + order.length + ' of them, from #' + order[0] + ' down' : 'no backward yet (values only)') +
    '; layers ' + (tape.fused ? 'fused' : 'as their primitives (fusion off)') + '.';
  if (tape.error) {
    $('tape-error').hidden = false;
    $('tape-error').textContent = 'The tape is in error: ' + tape.error;
  }
  if (!tape.backward) {
    for (const b of document.querySelectorAll('#modes button')) if (b.dataset.mode !== 'forward') b.disabled = true;
  }
  buildFlow();
  const m = /^#(backward|forward|flow)(?:\/(\d+))?$/.exec(location.hash);
  const first = m && (tape.backward || m[1] === 'forward') ? m[1] : tape.backward ? 'backward' : 'forward';
  state.mode = first;
  setZoom(Math.min(Math.max(fitZoom(), 1), 1.5)); /* text at its size, or larger when the graph is small */
  go(first, m ? Number(m[2] || 0) : 0);
})();
