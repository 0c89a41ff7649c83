import { CofferError } from '../../errors/index.js';

/**
 * Where a repository served by `coffer serve-repo` lives, parsed from an `https:` location:
 * `https://HOST[:PORT]/REPO`, REPO being the name the server gives the repository
 * (`--repo NAME=…`). Plain `http:` is refused: tokens and repository keys never cross a
 * network in clear. The token never goes in the location (it is printed in messages): it
 * comes from `--repo-token-file` or `COFFER_REPO_TOKEN`.
 */
export interface HttpLocation {
  /** `https://HOST:PORT`, without a trailing slash. */
  origin: string;
  /** The repository's name on the server. */
  repository: string;
  /** The location as given, normalized: for messages. */
  display: string;
}

const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** True when `location` names a repository server (`https://` or `http://`). */
export function isHttpLocation(location: string): boolean {
  return /^https?:\/\//i.test(location);
}

/** Parses an `https://HOST[:PORT]/REPO` location; anything else is `E_USAGE`. */
export function parseHttpLocation(location: string): HttpLocation {
  const shown = location.replace(/\/\/[^/@]*@/, '//…@');
  const bad = (why: string) => new CofferError('E_USAGE', `repository ${shown}: ${why} (expected https://HOST[:PORT]/REPO, REPO being a name the server serves)`);
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    throw bad('not a URL');
  }
  if (url.protocol !== 'https:') throw bad(`${url.protocol} is refused: a repository server is reached over https: only`);
  if (url.username !== '' || url.password !== '') throw bad('credentials do not belong in the location; use --repo-token-file or COFFER_REPO_TOKEN');
  if (url.search !== '' || url.hash !== '') throw bad('no query or fragment is allowed');
  const segments = url.pathname.split('/').filter((segment) => segment !== '');
  if (segments.length !== 1) throw bad('the path must be exactly one repository name');
  const repository = decodeURIComponent(segments[0] as string);
  if (!NAME_PATTERN.test(repository)) throw bad(`repository name ${JSON.stringify(repository)} is not valid ([a-z0-9._-], at most 64)`);
  return { origin: url.origin, repository, display: `${url.origin}/${repository}` };
}
