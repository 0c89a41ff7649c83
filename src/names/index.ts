/**
 * @module names
 * File names as bytes (byte-names.ts): a name that is not UTF-8 kept losslessly in a string,
 * its exact bytes for the host, and how it prints. A leaf every folder may import: the ext/XFS
 * readers, the host directory scan of a file backup, the tree format and the restores.
 */
export { decodeName, encodeName, hasRawBytes, hostPath, isDecodedName, nameBytesHex, printableName, printableText, unescapeName } from './byte-names.js';
