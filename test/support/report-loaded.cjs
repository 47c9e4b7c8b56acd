// Preloaded (NODE_OPTIONS=--require) into a seatctl process: at exit, says on
// stderr which of the optional packages (prom-client, pino) it loaded.
'use strict';
process.on('exit', () => {
  const loaded = new Set();
  for (const file of Object.keys(require.cache)) {
    const match = /node_modules[\\/](prom-client|pino)[\\/]/.exec(file);
    if (match) loaded.add(match[1]);
  }
  if (loaded.size > 0) process.stderr.write(`loaded: ${[...loaded].sort().join(', ')}\n`);
});
