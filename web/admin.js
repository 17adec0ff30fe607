// SPDX-License-Identifier: MIT
// The admin panel: usage and cost per user (GET /api/v1/usage) under the cluster view, which only
// admins see. It adds its own panel to #view-cluster, so the page's controller (app.js) needs no
// change, and refreshes every 5 s while that view is on screen. For a user who is not an admin the
// server answers 403 and the panel stays hidden.

import * as api from './api.js';
import {$, h, replaceChildren, formatBytes, formatDuration} from './util.js';

const PERIODS = [
    ['all', 'All time', 0],
    ['day', 'Last 24 hours', 86400],
    ['week', 'Last 7 days', 7 * 86400],
    ['month', 'Last 30 days', 30 * 86400],
];

let panel = null;
let timer = null;
let loading = false;

function money(v) {
    if (v === null || v === undefined) return '';
    return v >= 1 ? v.toFixed(2) : v >= 0.01 ? v.toFixed(4) : v.toPrecision(3);
}

function cpuTime(s) {
    return s < 60 ? `${s.toFixed(s < 10 ? 2 : 1)} s` : formatDuration(s);
}

function build() {
    const select = h('select', {id: 'usage-period'},
                     ...PERIODS.map(([value, label]) => h('option', {value}, label)));
    select.addEventListener('change', () => load());
    panel = h('div', {class: 'panel', id: 'usage-panel', hidden: ''},
        h('div', {class: 'panel-head'},
          h('h2', {id: 'usage-title'}, 'Usage and cost'),
          h('label', {for: 'usage-period', class: 'muted'}, 'Period ', select)),
        h('div', {id: 'usage-stats', class: 'stats'}),
        h('div', {class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Usage per user (scrolls sideways)'},
          h('table', {class: 'usage', 'aria-labelledby': 'usage-title'},
            h('thead', {}, h('tr', {},
              ...['User', 'Jobs', 'Items', 'Bytes in', 'Bytes out', 'CPU time', 'Stored now',
                  'Cost'].map((t, i) => h('th', {scope: 'col', class: i ? 'num' : ''}, t)))),
            h('tbody', {id: 'usage-rows'}))),
        h('p', {id: 'usage-note', class: 'muted small'}));
    $('#view-cluster').append(panel);
}

async function load() {
    if (loading || !panel) return;
    const sel = $('#usage-period');
    const span = PERIODS.find(([v]) => v === sel.value)[2];
    const query = span ? `?since=${Math.floor(Date.now() / 1000 - span)}` : '';
    let r;
    loading = true;
    try {
        r = await api.request('GET', `/usage${query}`);
    } catch (e) {
        panel.hidden = true; // 401/403: not an admin's page
        return;
    } finally {
        loading = false;
    }
    panel.hidden = false;
    const users = r.users || [];
    const sum = (k) => users.reduce((s, u) => s + (u[k] || 0), 0);
    const priced = Boolean(r.prices);
    const stat = (label, value) => h('div', {class: 'stat'}, h('span', {class: 'stat-value'}, value),
                                     h('span', {class: 'stat-label'}, label));
    replaceChildren($('#usage-stats'),
        stat('users', String(users.length)),
        stat('CPU time', cpuTime(sum('cpu_seconds'))),
        stat('stored now', formatBytes(sum('bytes_stored'))),
        priced ? stat('cost', money(users.reduce((s, u) => s + (u.cost ? u.cost.total : 0), 0)))
               : null);
    replaceChildren($('#usage-rows'), users.length
        ? users.map((u) => h('tr', {'data-user': u.user},
            h('td', {}, u.user),
            h('td', {class: 'num'}, String(u.jobs)),
            h('td', {class: 'num'}, String(u.items)),
            h('td', {class: 'num', title: `${u.bytes_in} bytes`}, formatBytes(u.bytes_in)),
            h('td', {class: 'num', title: `${u.bytes_out} bytes`}, formatBytes(u.bytes_out)),
            h('td', {class: 'num', title: `${u.cpu_seconds} s`}, cpuTime(u.cpu_seconds)),
            h('td', {class: 'num', title: `${u.bytes_stored} bytes`}, formatBytes(u.bytes_stored)),
            h('td', {class: 'num'}, u.cost ? money(u.cost.total) : '—')))
        : [h('tr', {}, h('td', {colspan: '8', class: 'muted'}, 'No usage in this period.'))]);
    $('#usage-note').textContent = (priced
        ? `Prices: ${r.prices.cpu_hour} per CPU hour, ${r.prices.gb_month} per GB-month stored. `
        : 'No price list (dip serve --cost-cpu-hour, --cost-gb-month). ') +
        `CPU time is measured with thread CPU clocks. Updated ${new Date().toLocaleTimeString()}.`;
}

function onRoute() {
    clearInterval(timer);
    timer = null;
    if (!/^#\/?cluster/.test(location.hash)) return;
    load();
    timer = setInterval(() => {
        if (!document.hidden) load();
    }, 5000);
}

function start() {
    if (!$('#view-cluster')) return;
    build();
    window.addEventListener('hashchange', onRoute);
    onRoute();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
