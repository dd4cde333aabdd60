// The farm's JSON endpoints, relative to the web UI's page (so a proxy that moves
// the master's URL is no matter).
import {useEffect, useState} from 'react';

export const MATRIX_DATA = 'plugins/matrix/data.json';
export const ARTIFACTS = 'plugins/artifacts/';

export type Loaded<T> = {data: T | null; error: string | null};

/** GETs ``url`` as JSON, again every ``refreshMs`` when given. */
export function useJson<T>(url: string, refreshMs?: number): Loaded<T> {
  const [state, setState] = useState<Loaded<T>>({data: null, error: null});
  useEffect(() => {
    let live = true;
    const load = () => fetch(url, {headers: {Accept: 'application/json'}, cache: 'no-store'})
      .then(reply => reply.ok ? reply.json() : Promise.reject(new Error(
        reply.status === 404 ? 'not found' : `${reply.status} ${reply.statusText}`)))
      .then(data => { if (live) setState({data: data as T, error: null}); },
            (err: Error) => { if (live) setState(old => ({data: old.data, error: err.message})); });
    load();
    const timer = refreshMs ? window.setInterval(load, refreshMs) : undefined;
    return () => { live = false; if (timer) window.clearInterval(timer); };
  }, [url, refreshMs]);
  return state;
}

export function humanSize(size: number | null | undefined): string {
  if (size === null || size === undefined) return '';
  let value = size;
  for (const unit of ['bytes', 'KB', 'MB', 'GB']) {
    if (value < 1024 || unit === 'GB') {
      return unit === 'bytes' ? `${value} bytes` : `${value.toFixed(1).replace(/\.0$/, '')} ${unit}`;
    }
    value /= 1024;
  }
  return `${size} bytes`;
}

export function when(stamp: number | null | undefined): string {
  if (!stamp) return '';
  return new Date(stamp * 1000).toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

export function ago(stamp: number | null | undefined): string {
  if (!stamp) return '';
  const seconds = Math.max(0, Date.now() / 1000 - stamp);
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 129600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

/** An encoded path segment. */
export const seg = (text: string) => encodeURIComponent(text);
