// SPDX-License-Identifier: MIT
// The page's pre-upload checks (web/files.js) against the limits the server announces: each side
// against its own limit, as the server checks them. The page once compared both sides with
// min(max_width, max_height), so `dip serve --max-width 6000 --max-height 100` made it refuse a
// 5000 x 50 image the server accepts.
import path from 'node:path';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import {SRC} from './lib.mjs';

const {LIMITS, setLimits, inspect} = await import(path.join(SRC, 'web', 'files.js'));

/** A PNG's first bytes: signature and IHDR (w x h, 8-bit RGB); enough for the header check. */
function pngHead(w, h) {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(w, 0);
    ihdr.writeUInt32BE(h, 4);
    ihdr[8] = 8;
    ihdr[9] = 2;
    const type = Buffer.from('IHDR');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(13, 0);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32 ? zlib.crc32(Buffer.concat([type, ihdr])) : 0, 0);
    return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), len, type, ihdr, crc,
                          Buffer.alloc(64)]);
}

setLimits({max_width: 6000, max_height: 100, max_pixels: 1e9, max_input_bytes: 1 << 20});
assert.equal(LIMITS.maxWidth, 6000);
assert.equal(LIMITS.maxHeight, 100);
const wide = await inspect(new File([pngHead(5000, 50)], 'wide.png'));
assert.equal(wide.format, 'png');
assert.equal(wide.width, 5000);
assert.equal(wide.fatal, false, `a 5000 x 50 image within 6000 x 100 was refused: ${wide.problems}`);
const tall = await inspect(new File([pngHead(50, 500)], 'tall.png'));
assert.equal(tall.fatal, true, 'a 50 x 500 image over max_height 100 was accepted');
assert.match(tall.problems.join(' '), /6000 × 100/);
const big = await inspect(new File([pngHead(7000, 10)], 'big.png'));
assert.equal(big.fatal, true, 'a 7000 x 10 image over max_width 6000 was accepted');
console.log('ok: each side against its own limit');
