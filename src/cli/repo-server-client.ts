import type { RepoServerAccess } from '../repo/index.js';

/** The options that reach a repository server (`-r https://HOST:PORT/REPO`). */
export interface RepoServerClientOptions {
  /** A file holding the token (`coffer serve-repo token add` printed it); else `$COFFER_REPO_TOKEN`. */
  repoTokenFile?: string;
  /** The server certificate's SHA-256 fingerprint to pin; else `$COFFER_REPO_FINGERPRINT`. */
  repoFingerprint?: string;
  /** A PEM file of CA certificates to trust instead of the system's. */
  cacert?: string;
}

/** The options as the repository's location dispatch takes them (repo/open-location.ts). */
export function repoServerAccess(options: RepoServerClientOptions): RepoServerAccess {
  return {
    ...(options.repoTokenFile === undefined ? {} : { tokenFile: options.repoTokenFile }),
    ...(options.repoFingerprint === undefined ? {} : { fingerprint: options.repoFingerprint }),
    ...(options.cacert === undefined ? {} : { cacert: options.cacert }),
  };
}
