// SPDX-License-Identifier: MIT
// Pipeline text <-> builder steps. The parser follows the server's grammar
// (src/plan/pipeline.c): steps separated by '|', each `name` or `name(arg, ...)`, an arg being
// `param=value` or a positional value in table order; names are case-insensitive. It checks
// names and ranges against GET /api/v1/ops so that mistakes show while typing; the server stays
// the judge when the job is submitted.

import {formatNumber} from './util.js';

export class PipelineError extends Error {
    constructor(pos, message) {
        super(`at ${pos}: ${message}`);
        this.name = 'PipelineError';
        this.pos = pos; // 1-based character position, like the server's messages
    }
}

const isIdent = (ch) => /[A-Za-z0-9_-]/.test(ch);
const isSpace = (ch) => ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' ||
    ch === '\v';

/** Edit distance, for "did you mean". */
function distance(a, b) {
    const d = Array.from({length: a.length + 1}, (_, i) => [i]);
    for (let j = 1; j <= b.length; j++) d[0][j] = j;
    for (let i = 1; i <= a.length; i++) {
        for (let j = 1; j <= b.length; j++) {
            d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1,
                               d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
        }
    }
    return d[a.length][b.length];
}

export function suggest(name, ops) {
    return ops.map((op) => [distance(name, op.name), op.name])
        .filter(([d]) => d <= Math.max(2, Math.floor(name.length / 3)))
        .sort((x, y) => x[0] - y[0]).slice(0, 3).map(([, n]) => n);
}

/** The declared constraint `odd` of GET /api/v1/ops: odd values, or 0 where 0 is the minimum. */
export const oddOk = (p, v) => !p.odd || Math.abs(v % 2) === 1 || (v === 0 && p.min === 0);

/** Parses one value for param p; returns the JS value or throws a message. */
export function parseValue(op, p, text) {
    const lo = formatNumber(p.min), hi = formatNumber(p.max);
    switch (p.type) {
    case 'enum': {
        const c = (p.choices || []).find((x) => x.toLowerCase() === text.toLowerCase());
        if (c === undefined) {
            throw `${op.name}: ${p.name}='${text}' is not one of: ${(p.choices || []).join(', ')}`;
        }
        return c;
    }
    case 'bool': {
        const t = text.toLowerCase();
        if (['true', 'yes', '1', 'on'].includes(t)) return true;
        if (['false', 'no', '0', 'off'].includes(t)) return false;
        throw `${op.name}: ${p.name}='${text}' must be true or false`;
    }
    default: {
        const v = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) ||
            /^[+-]?0[xX][0-9a-fA-F]+$/.test(text) ? Number(text) : NaN;
        if (!Number.isFinite(v)) throw `${op.name}: ${p.name}='${text}' is not a number (range ${lo}..${hi})`;
        if (p.type === 'int' && !Number.isInteger(v)) {
            throw `${op.name}: ${p.name}=${text} must be an integer (range ${lo}..${hi})`;
        }
        if (v < p.min || v > p.max) throw `${op.name}: ${p.name}=${text} is out of range ${lo}..${hi}`;
        if (!oddOk(p, v)) throw `${op.name}: ${p.name}=${text} must be odd${p.min === 0 ? ' (or 0: automatic)' : ''}`;
        return v;
    }
    }
}

/** A fresh step for op with every parameter at its default. */
export function newStep(op) {
    const values = {};
    for (const p of op.params || []) values[p.name] = defaultValue(p);
    return {op, values, explicit: new Set()};
}

export function defaultValue(p) {
    if (p.type === 'bool') return Boolean(p.default);
    if (p.type === 'enum') {
        const c = p.choices || [];
        if (typeof p.default === 'string') return p.default;
        return c[Math.max(0, Math.min(c.length - 1, Number(p.default) || 0))];
    }
    return Number(p.default);
}

/**
 * Parses text into [{op, values, explicit}] using the ops table (array from GET /ops). Throws
 * PipelineError. The empty pipeline gives [].
 */
export function parse(text, ops) {
    const byName = new Map(ops.map((op) => [op.name.toLowerCase(), op]));
    const s = String(text ?? '');
    let pos = 0;
    const steps = [];
    const ws = () => { while (pos < s.length && isSpace(s[pos])) pos++; };
    const ident = () => {
        const start = pos;
        while (pos < s.length && isIdent(s[pos])) pos++;
        return s.slice(start, pos).toLowerCase();
    };
    const value = () => {
        const start = pos;
        while (pos < s.length && !',)|('.includes(s[pos])) pos++;
        return s.slice(start, pos).trim();
    };

    ws();
    if (pos >= s.length) return steps;
    for (;;) {
        if (steps.length === 64) throw new PipelineError(pos + 1, 'more than 64 operations');
        ws();
        const at = pos + 1;
        const name = ident();
        if (!name) {
            if (pos >= s.length) throw new PipelineError(at, "expected an operation name after '|'");
            throw new PipelineError(at, `expected an operation name, got '${s[pos]}'`);
        }
        const op = byName.get(name);
        if (!op) {
            const sug = suggest(name, ops);
            const hint = sug.length ? ` (did you mean ${sug.join(', ')}?)` : '';
            throw new PipelineError(at, `unknown operation '${name}'${hint}`);
        }
        const step = newStep(op);
        const params = op.params || [];
        ws();
        if (s[pos] === '(') {
            pos++;
            ws();
            if (s[pos] === ')') {
                pos++;
            } else {
                let positional = 0;
                for (;;) {
                    ws();
                    const argAt = pos + 1;
                    const save = pos;
                    let p = null;
                    const key = ident();
                    if (key) {
                        ws();
                        if (s[pos] === '=') {
                            pos++;
                            p = params.find((x) => x.name.toLowerCase() === key);
                            if (!p) {
                                const list = params.length
                                    ? `parameters: ${params.map((x) => x.name).join(', ')}`
                                    : 'it has none';
                                throw new PipelineError(argAt, `${op.name} has no parameter '${key}' (${list})`);
                            }
                        } else {
                            pos = save; // a positional value that looks like a name ("true")
                        }
                    }
                    if (!p) {
                        if (positional >= params.length) {
                            throw new PipelineError(argAt, `${op.name} takes ${params.length} ` +
                                `parameter${params.length === 1 ? '' : 's'}, too many given`);
                        }
                        p = params[positional++];
                    }
                    ws();
                    const v = value();
                    if (!v) throw new PipelineError(pos + 1, `${op.name}: missing value for '${p.name}'`);
                    if (step.explicit.has(p.name)) {
                        throw new PipelineError(argAt, `${op.name}: '${p.name}' given twice`);
                    }
                    try {
                        step.values[p.name] = parseValue(op, p, v);
                    } catch (msg) {
                        throw new PipelineError(argAt, String(msg));
                    }
                    step.explicit.add(p.name);
                    ws();
                    if (s[pos] === ',') { pos++; continue; }
                    if (s[pos] === ')') { pos++; break; }
                    throw new PipelineError(pos + 1,
                        `expected ',' or ')' in the parameters of ${op.name}` +
                        (pos >= s.length ? ' (the text ended)' : ''));
                }
            }
        }
        steps.push(step);
        ws();
        if (pos >= s.length) break;
        if (s[pos] !== '|') {
            throw new PipelineError(pos + 1, `expected '|' between operations, got '${s[pos]}'`);
        }
        pos++;
    }
    return steps;
}

function valueText(p, v) {
    if (p.type === 'bool') return v ? 'true' : 'false';
    if (p.type === 'enum') return String(v);
    return formatNumber(v);
}

/** Text for steps; a parameter is written when it was set explicitly or differs from its default. */
export function format(steps) {
    return steps.map(({op, values, explicit}) => {
        const args = (op.params || [])
            .filter((p) => explicit.has(p.name) || values[p.name] !== defaultValue(p))
            .map((p) => `${p.name}=${valueText(p, values[p.name])}`);
        return args.length ? `${op.name}(${args.join(', ')})` : op.name;
    }).join(' | ');
}
