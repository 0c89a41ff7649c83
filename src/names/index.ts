/**
 * @module names
 * File names as bytes (byte-names.ts): a name that is not UTF-8 kept losslessly in a string,
 * its exact bytes for the host, and how it prints. A leaf every folder may import: the ext/XFS
 * readers, the host directory scan of a file backup, the tree format and the restores. And a
 * word as a shell command line must hold it (shell-word.ts), for the commands messages suggest;
 * a serial console's output as plain text (console-text.ts).
 */
export { shellWord } from './shell-word.js';
export { plainConsoleText } from './console-text.js';
export { decodeName, encodeName, hasRawBytes, hostPath, isDecodedName, nameBytesHex, printableName, printableText, printableWithBytes, unescapeName, withNameBytes } from './byte-names.js';
