// SPDX-License-Identifier: MIT
// The new-job form that outlives a reload, and saved pipelines: the pipeline text, format,
// quality and job name are kept in this browser (local storage) as they change and put back when
// the page opens; a pipeline with its format and quality can be saved under a name (a preset) and
// applied from a list. Nothing here goes to the server: presets belong to the browser, like the
// token. The job name field (sent as the job's `name`) lives here too.

import {$, h, replaceChildren, announce} from './util.js';

const FORM_KEY = 'dip.form';
const PRESETS_KEY = 'dip.presets';
const MAX_PRESETS = 100;

function load(key, fallback) {
    try {
        const v = JSON.parse(localStorage.getItem(key) || 'null');
        return v ?? fallback;
    } catch {
        return fallback; // storage off or a value this page did not write
    }
}

function store(key, value) {
    try {
        localStorage.setItem(key, JSON.stringify(value));
    } catch {
        /* storage full or off: the form simply is not kept */
    }
}

export function getPresets() {
    const list = load(PRESETS_KEY, []);
    return Array.isArray(list) ? list.filter((p) => p && typeof p.name === 'string') : [];
}

/** The job name the user typed ('' for none). */
export function jobName() {
    const el = $('#job-name');
    return el ? el.value.trim() : '';
}

/** After a job started: its name is not the next job's. */
export function clearJobName() {
    const el = $('#job-name');
    if (el) el.value = '';
    saveForm();
}

function currentForm() {
    return {
        pipeline: $('#pipeline-text').value,
        format: $('#format').value,
        quality: $('#quality').value,
        name: jobName(),
    };
}

export function saveForm() {
    store(FORM_KEY, currentForm());
}

/** Puts values into the form as a user would (so that the page's own listeners follow). */
function applyForm(builder, f) {
    if (typeof f.pipeline === 'string') builder.setText(f.pipeline);
    const fmt = $('#format');
    if (typeof f.format === 'string' && [...fmt.options].some((o) => o.value === f.format)) {
        fmt.value = f.format;
        fmt.dispatchEvent(new Event('change'));
    }
    const q = Number(f.quality);
    if (Number.isInteger(q) && q >= 1 && q <= 100) {
        $('#quality').value = String(q);
        $('#quality').dispatchEvent(new Event('input'));
    }
}

/** Adds the job name field, the presets row, and keeps the form in local storage. Call once the
 * builder exists; it restores the last form at once. */
export function setupForm(builder, onApplied) {
    const nameField = h('div', {class: 'field job-name-field'},
        h('label', {for: 'job-name'}, 'Job name ', h('span', {class: 'muted'}, '(optional)')),
        h('input', {id: 'job-name', type: 'text', maxlength: '100', autocomplete: 'off',
                    spellcheck: 'false'}));
    $('.submit-row').before(nameField);

    const select = h('select', {id: 'preset-select'});
    const nameInput = h('input', {id: 'preset-name', type: 'text', maxlength: '60',
                                  autocomplete: 'off'});
    const del = h('button', {id: 'preset-delete', type: 'button', class: 'btn btn-small btn-quiet'},
                  'Delete');
    const save = h('button', {id: 'preset-save', type: 'button', class: 'btn btn-small'}, 'Save');
    const row = h('div', {class: 'presets'},
        h('div', {class: 'field'}, h('label', {for: 'preset-select'}, 'Saved pipelines'),
          h('div', {class: 'preset-use'}, select, del)),
        h('div', {class: 'field'}, h('label', {for: 'preset-name'}, 'Save this pipeline as'),
          h('div', {class: 'preset-use'}, nameInput, save)));
    $('#pipeline-text').closest('.field').after(row);

    const render = (chosen = '') => {
        const list = getPresets();
        replaceChildren(select,
            h('option', {value: ''}, list.length ? 'Choose a saved pipeline…' : 'None saved yet'),
            list.map((p) => h('option', {value: p.name, selected: p.name === chosen}, p.name)));
        select.disabled = !list.length;
        del.disabled = !chosen;
    };
    select.addEventListener('change', () => {
        const p = getPresets().find((x) => x.name === select.value);
        del.disabled = !p;
        if (!p) return;
        applyForm(builder, p);
        saveForm();
        announce(`Pipeline ${p.name} applied.`);
        if (onApplied) onApplied();
    });
    const doSave = () => {
        const name = nameInput.value.trim();
        if (!name) {
            nameInput.focus();
            announce('Type a name for the pipeline first.');
            return;
        }
        const f = currentForm();
        const list = getPresets().filter((p) => p.name !== name);
        list.push({name, pipeline: f.pipeline, format: f.format, quality: f.quality});
        list.sort((a, b) => a.name.localeCompare(b.name));
        store(PRESETS_KEY, list.slice(0, MAX_PRESETS));
        nameInput.value = '';
        render(name);
        announce(`Pipeline saved as ${name}.`);
    };
    save.addEventListener('click', doSave);
    nameInput.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' && !e.ctrlKey && !e.metaKey) {
            e.preventDefault();
            doSave();
        }
    });
    del.addEventListener('click', () => {
        const name = select.value;
        if (!name) return;
        store(PRESETS_KEY, getPresets().filter((p) => p.name !== name));
        render();
        announce(`Saved pipeline ${name} deleted.`);
        select.focus();
    });
    render();

    // The form as it was, then kept as it changes.
    const f = load(FORM_KEY, null);
    if (f && typeof f === 'object') {
        applyForm(builder, f);
        if (typeof f.name === 'string') $('#job-name').value = f.name.slice(0, 100);
    }
    for (const [sel, ev] of [['#pipeline-text', 'input'], ['#format', 'change'],
                             ['#quality', 'input'], ['#job-name', 'input']]) {
        $(sel).addEventListener(ev, saveForm);
    }
}
