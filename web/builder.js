// SPDX-License-Identifier: MIT
// The pipeline builder: operations from GET /api/v1/ops as cards with typed inputs (number and
// slider within the range, select for choices, checkbox for booleans), added, removed and
// reordered with buttons (keyboard) or by dragging, and kept in step with the pipeline text in
// both directions: the builder writes the text, and editing the text re-parses into the builder.

import {h, replaceChildren, debounce, formatNumber, announce} from './util.js';
import {parse, format, newStep, defaultValue, oddOk, PipelineError} from './pipeline.js';

export const KIND_LABELS = {
    point: 'Pixel', stencil: 'Neighbourhood', stat: 'Whole-image statistic', global: 'Whole image',
    geometric: 'Geometry',
};
const KIND_ORDER = ['point', 'stat', 'stencil', 'global', 'geometric'];
const CONTROLS = 'input, select, button'; // a card's controls, in order

let uid = 0;

/** A pleasant slider step for a range: about 200 stops, rounded to 1, 2 or 5 x 10^k. */
function niceStep(p) {
    if (p.type === 'int') return 1;
    const raw = (p.max - p.min) / 200;
    if (!(raw > 0)) return 0.01;
    const e = 10 ** Math.floor(Math.log10(raw));
    const m = raw / e;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * e;
}

function roundTo(v, step) {
    const decimals = Math.max(0, -Math.floor(Math.log10(step)) + 1);
    return Number(v.toFixed(Math.min(decimals, 12)));
}

export class Builder {
    /** els: {list, select, add, text, error, status}; onChange(text) after every change. */
    constructor(els, onChange) {
        this.els = els;
        this.onChange = onChange;
        this.ops = [];
        this.steps = [];
        this.textError = null; // PipelineError from the text, or null when text and builder agree
        this.serverError = null;
        this.readText = null; // the text the builder last read or wrote: no need to read it again
        els.add.addEventListener('click', () => this.addSelected());
        els.select.addEventListener('keydown', (e) => {
            if (e.key === 'Enter') {
                e.preventDefault();
                this.addSelected();
            }
        });
        els.select.addEventListener('change', () => this.showSelectedSummary());
        const reparse = debounce((next) => this.fromText(next), 250);
        els.text.addEventListener('input', () => {
            this.serverError = null;
            reparse();
        });
        // Leaving the text reads it at once. The control taking the focus (a parameter of a step,
        // clicked straight from the text) is passed on, so that if the cards are redrawn its twin
        // in the new card gets the focus, and the click and the keys after it are not lost.
        els.text.addEventListener('blur', (e) => reparse.flush(e.relatedTarget));
    }

    setOps(ops) {
        this.ops = ops;
        const groups = new Map();
        for (const op of ops) {
            if (!groups.has(op.kind)) groups.set(op.kind, []);
            groups.get(op.kind).push(op);
        }
        const kinds = [...groups.keys()].sort((a, b) => {
            const ia = KIND_ORDER.indexOf(a), ib = KIND_ORDER.indexOf(b);
            return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
        });
        replaceChildren(this.els.select,
            h('option', {value: ''}, ops.length ? 'Choose an operation…' : 'No operations available'),
            kinds.map((k) => h('optgroup', {label: KIND_LABELS[k] || k},
                groups.get(k).map((op) => h('option', {value: op.name},
                    `${op.name} — ${op.summary || ''}`)))));
        this.showSelectedSummary();
        this.fromText(undefined, true);
    }

    showSelectedSummary() {
        const op = this.ops.find((o) => o.name === this.els.select.value);
        this.els.add.disabled = !op;
        if (this.els.summary) {
            this.els.summary.textContent = op ? (op.doc || op.summary || '') : '';
            this.els.summary.title = this.els.summary.textContent;
        }
    }

    addSelected() {
        const op = this.ops.find((o) => o.name === this.els.select.value);
        if (!op) {
            this.els.select.focus();
            return;
        }
        this.steps.push(newStep(op));
        this.els.select.value = '';
        this.showSelectedSummary();
        this.changed();
        this.render();
        const card = this.els.list.lastElementChild;
        const first = card && card.querySelector('input:not([tabindex="-1"]), select');
        (first || card.querySelector('button') || this.els.add).focus();
        announce(`Added ${op.name} as step ${this.steps.length}.`);
    }

    move(i, d) {
        const j = i + d;
        if (j < 0 || j >= this.steps.length) return;
        [this.steps[i], this.steps[j]] = [this.steps[j], this.steps[i]];
        this.changed();
        this.render();
        const card = this.els.list.children[j];
        const btn = card && (card.querySelector(d < 0 ? '.move-up:not([disabled])' : '.move-down:not([disabled])') ||
                             card.querySelector('.move-up:not([disabled]), .move-down:not([disabled])'));
        if (btn) btn.focus();
        announce(`Moved ${this.steps[j].op.name} to step ${j + 1} of ${this.steps.length}.`);
    }

    remove(i) {
        const [gone] = this.steps.splice(i, 1);
        this.changed();
        this.render();
        const cards = this.els.list.children;
        const next = cards[Math.min(i, cards.length - 1)];
        (next ? next.querySelector('.remove') : this.els.select).focus();
        announce(`Removed ${gone.op.name}. ${this.steps.length} step${this.steps.length === 1 ? '' : 's'} left.`);
    }

    clear() {
        this.steps = [];
        this.changed();
        this.render();
    }

    /** The builder changed: rewrite the text. */
    changed() {
        this.textError = null;
        this.serverError = null;
        this.els.text.value = format(this.steps);
        this.readText = this.els.text.value;
        this.showStatus();
        this.onChange(this.els.text.value);
    }

    /** The text changed: rebuild the builder when it parses. Nothing to do when the text is the
     * one last read or written (leaving the text after the debounced read, or without typing),
     * unless `force`. `next`: the control about to take the focus (see render). */
    fromText(next, force = false) {
        if (!this.ops.length) return;
        if (!force && this.els.text.value === this.readText) {
            this.showStatus(); // a server error the typing cleared
            return;
        }
        this.readText = this.els.text.value;
        try {
            this.steps = parse(this.els.text.value, this.ops);
            this.textError = null;
            this.render(next);
        } catch (e) {
            if (!(e instanceof PipelineError)) throw e;
            this.textError = e;
        }
        this.showStatus();
        this.onChange(this.els.text.value);
    }

    setText(text) {
        this.els.text.value = text;
        this.serverError = null;
        this.fromText(undefined, true);
    }

    /** Shows an error from the server about the pipeline (an ApiError). */
    showServerError(err) {
        this.serverError = err;
        this.showStatus();
    }

    showStatus() {
        const err = this.serverError || this.textError;
        const el = this.els.error;
        el.hidden = !err;
        this.els.text.setAttribute('aria-invalid', String(Boolean(err)));
        this.els.list.classList.toggle('stale', Boolean(this.textError));
        if (err) {
            const who = this.serverError
                ? `The server refused the pipeline (${this.serverError.code})` : 'Pipeline text';
            replaceChildren(el, h('strong', {}, `${who}: `), err.message,
                this.textError && !this.serverError
                    ? h('span', {class: 'muted'}, ' The builder shows the last pipeline that read correctly.')
                    : null);
        } else {
            el.textContent = '';
        }
        if (this.els.status) {
            const n = this.steps.length;
            this.els.status.textContent = n ? `${n} step${n === 1 ? '' : 's'}` : 'No steps';
        }
    }

    hasError() {
        return Boolean(this.textError);
    }

    /** Draws the cards anew. A control of the old cards that has the focus, or is about to
     * (`next`, from a blur), hands it to the control at the same place of the new card when that
     * card is of the same operation. */
    render(next = document.activeElement) {
        const list = this.els.list;
        const at = this.placeOf(next);
        if (!this.steps.length) {
            replaceChildren(list, h('li', {class: 'step-empty muted'},
                'No operations yet. Without any, the images are only converted to the output format.'));
            return;
        }
        replaceChildren(list, this.steps.map((st, i) => this.renderStep(st, i)));
        if (at) {
            const card = list.children[at.card];
            const control = card && card.dataset.op === at.op &&
                card.querySelectorAll(CONTROLS)[at.control];
            if (control) control.focus();
        }
    }

    /** Where a control sits in the cards: {card, op, control} (indexes), or null. */
    placeOf(el) {
        const card = el && el.closest && this.els.list.contains(el) ? el.closest('li.step') : null;
        if (!card) return null;
        return {card: [...this.els.list.children].indexOf(card), op: card.dataset.op,
                control: [...card.querySelectorAll(CONTROLS)].indexOf(el)};
    }

    renderStep(st, i) {
        const n = this.steps.length;
        const id = `step-${++uid}`;
        const op = st.op;
        const btn = (cls, label, text, fn, disabled) => h('button', {
            type: 'button', class: `btn btn-icon ${cls}`, 'aria-label': label, title: label,
            onclick: fn, disabled,
        }, text);
        const params = (op.params || []).map((p) => this.renderParam(st, p, `${id}-${p.name}`));
        const card = h('li', {class: 'step', 'aria-labelledby': `${id}-title`, dataset: {index: i, op: op.name}},
            h('div', {class: 'step-head'},
                h('span', {class: 'drag-handle', title: 'Drag to reorder', 'aria-hidden': 'true'}, '⋮⋮'),
                h('span', {class: 'step-num', 'aria-hidden': 'true'}, String(i + 1)),
                h('div', {class: 'step-title'},
                    h('h3', {id: `${id}-title`},
                      h('span', {class: 'visually-hidden'}, `Step ${i + 1}: `), op.name,
                      h('span', {class: `kind kind-${op.kind}`}, KIND_LABELS[op.kind] || op.kind))),
                h('div', {class: 'step-actions'},
                    btn('move-up', `Move ${op.name} up`, '↑', () => this.move(i, -1), i === 0),
                    btn('move-down', `Move ${op.name} down`, '↓', () => this.move(i, 1), i === n - 1),
                    btn('remove', `Remove ${op.name}`, '✕', () => this.remove(i)))),
            op.summary ? h('p', {class: 'muted step-summary', title: op.doc || ''}, op.summary) : null,
            params.length ? h('div', {class: 'params'}, params)
                : h('p', {class: 'muted params-none'}, 'No parameters.'));
        this.enableDrag(card, i);
        return card;
    }

    renderParam(st, p, id) {
        const v = st.values[p.name];
        const helpId = `${id}-help`;
        const help = p.help ? h('span', {id: helpId, class: 'param-help'}, p.help) : null;
        const set = (value) => {
            st.values[p.name] = value;
            st.explicit.add(p.name);
            this.changed();
        };
        let control;
        if (p.type === 'bool') {
            control = h('label', {class: 'check'},
                h('input', {type: 'checkbox', id, checked: Boolean(v), 'aria-describedby': help ? helpId : null,
                            onchange: (e) => set(e.target.checked)}),
                h('span', {}, p.name));
            return h('div', {class: 'param param-bool'}, control, help);
        }
        if (p.type === 'enum') {
            control = h('select', {id, 'aria-describedby': help ? helpId : null,
                                   onchange: (e) => set(e.target.value)},
                (p.choices || []).map((c) => h('option', {value: c, selected: c === v}, c)));
            return h('div', {class: 'param'}, h('label', {for: id}, p.name), control, help);
        }
        const step = niceStep(p);
        const range = `${formatNumber(p.min)} to ${formatNumber(p.max)}`;
        const number = h('input', {
            type: 'number', id, min: p.min, max: p.max, step: p.type === 'int' ? '1' : 'any',
            value: formatNumber(v), inputmode: p.type === 'int' ? 'numeric' : 'decimal',
            'aria-describedby': `${id}-range${help ? ` ${helpId}` : ''}`, required: true,
        });
        const slider = h('input', {
            type: 'range', min: p.min, max: p.max, step, value: v, tabindex: '-1',
            'aria-hidden': 'true', class: 'param-slider',
        });
        const bad = h('span', {class: 'param-error', role: 'alert', hidden: true});
        number.addEventListener('input', () => {
            const t = number.value.trim();
            const x = Number(t);
            const ok = t !== '' && Number.isFinite(x) && x >= p.min && x <= p.max &&
                (p.type !== 'int' || Number.isInteger(x)) && oddOk(p, x);
            number.setAttribute('aria-invalid', String(!ok));
            bad.hidden = ok;
            if (!ok) {
                bad.textContent = `${p.name} must be ${p.odd ? 'an odd' : p.type === 'int' ? 'a whole'
                    : 'a'} number from ${range}${p.odd && p.min === 0 ? ' (or 0: automatic)' : ''}.`;
                return;
            }
            slider.value = String(x);
            set(x);
        });
        slider.addEventListener('input', () => {
            let x = Number(slider.value);
            x = p.type === 'int' ? Math.round(x) : roundTo(x, step);
            x = Math.min(p.max, Math.max(p.min, x));
            if (!oddOk(p, x)) x = x + 1 <= p.max ? x + 1 : x - 1; // the slider steps over even sizes
            number.value = formatNumber(x);
            number.setAttribute('aria-invalid', 'false');
            bad.hidden = true;
            set(x);
        });
        const reset = h('button', {type: 'button', class: 'btn-link param-reset',
            title: `Reset ${p.name} to ${formatNumber(defaultValue(p))}`,
            'aria-label': `Reset ${p.name} to its default, ${formatNumber(defaultValue(p))}`,
            onclick: () => {
                const d = defaultValue(p);
                number.value = formatNumber(d);
                slider.value = String(d);
                bad.hidden = true;
                number.setAttribute('aria-invalid', 'false');
                st.values[p.name] = d;
                st.explicit.delete(p.name);
                this.changed();
            }}, 'reset');
        return h('div', {class: 'param'},
            h('div', {class: 'param-label'}, h('label', {for: id}, p.name),
              h('span', {id: `${id}-range`, class: 'param-range muted'}, range), reset),
            h('div', {class: 'param-inputs'}, slider, number), bad, help);
    }

    /* Optional drag and drop between cards; the buttons do the same from the keyboard. */
    enableDrag(card, i) {
        const handle = card.querySelector('.drag-handle');
        handle.addEventListener('pointerdown', () => { card.draggable = true; });
        card.addEventListener('dragstart', (e) => {
            e.dataTransfer.effectAllowed = 'move';
            e.dataTransfer.setData('text/x-dip-step', String(i));
            card.classList.add('dragging');
        });
        card.addEventListener('dragend', () => {
            card.draggable = false;
            card.classList.remove('dragging');
        });
        card.addEventListener('dragover', (e) => {
            if (!e.dataTransfer.types.includes('text/x-dip-step')) return;
            e.preventDefault();
            card.classList.add('drop-target');
        });
        card.addEventListener('dragleave', () => card.classList.remove('drop-target'));
        card.addEventListener('drop', (e) => {
            card.classList.remove('drop-target');
            const from = Number(e.dataTransfer.getData('text/x-dip-step'));
            if (!Number.isInteger(from) || from === i) return;
            e.preventDefault();
            const [st] = this.steps.splice(from, 1);
            this.steps.splice(i, 0, st);
            this.changed();
            this.render();
        });
    }
}
