'use strict'
// Prints the size of lib/index.js as shipped, minified (terser, pinned in devDependencies)
// and minified + gzip, as JSON: {"file","bytes","min_bytes","min_gzip_bytes"}.
// make bench (internal/bench) reports these numbers.
const fs = require('node:fs')
const path = require('node:path')
const zlib = require('node:zlib')
const { minify } = require('terser')

async function main() {
  const file = path.join(__dirname, '..', 'lib', 'index.js')
  const src = fs.readFileSync(file, 'utf8')
  const out = await minify(src, { ecma: 5, compress: true, mangle: true })
  const min = Buffer.from(out.code, 'utf8')
  process.stdout.write(
    JSON.stringify({
      file: 'client/lib/index.js',
      bytes: Buffer.byteLength(src),
      min_bytes: min.length,
      min_gzip_bytes: zlib.gzipSync(min, { level: 9 }).length
    }) + '\n'
  )
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
