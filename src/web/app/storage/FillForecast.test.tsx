import { fireEvent, screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { renderInConsole } from '../testing/render';
import { FillForecastBody } from './FillForecast';

const GiB = 1024 ** 3;

describe('FillForecastBody', () => {
  it('counts the days from the free space the server reads, and asks nothing', () => {
    renderInConsole(<FillForecastBody space={{ freeBytes: 10 * GiB, totalBytes: 100 * GiB, explanation: 'the filesystem holding /srv/repo' }} stored={50 * GiB} growthPerDay={GiB} />);
    expect(screen.getByTestId('free-space').textContent).toBe('Free: 10.0 GiB of 100 GiB (the filesystem holding /srv/repo).');
    expect(screen.getByTestId('fill-forecast').textContent).toBe('Full in about 10 days at the current growth.');
    expect(screen.queryByRole('textbox')).toBeNull();
  });

  it('where the server cannot tell (S3), says why and counts from the size the user types, less what is stored', () => {
    renderInConsole(<FillForecastBody space={{ freeBytes: null, totalBytes: null, explanation: 'the repository is on S3 or a repository server' }} stored={40 * GiB} growthPerDay={2 * GiB} />);
    expect(screen.getByText('The server cannot tell: the repository is on S3 or a repository server.')).toBeTruthy();
    expect(screen.queryByTestId('fill-forecast')).toBeNull();
    fireEvent.change(screen.getByRole('textbox', { name: "Space of the repository's storage (GiB)" }), { target: { value: '100' } });
    expect(screen.getByTestId('fill-forecast').textContent).toBe('Full in about 30 days at the current growth.');
    fireEvent.change(screen.getByRole('textbox', { name: "Space of the repository's storage (GiB)" }), { target: { value: '30' } });
    expect(screen.getByTestId('fill-forecast').textContent).toBe('Already full or beyond.');
  });

  it('counts in years beyond two, and says "not within a hundred years" beyond that', () => {
    const cases: Array<[number, string]> = [
      [730, 'Full in about 730 days at the current growth.'],
      [3 * 365, 'Full in about 3 years at the current growth.'],
      [188_611_349, 'Not full within a hundred years at the current growth.'],
    ];
    for (const [days, words] of cases) {
      const view = renderInConsole(<FillForecastBody space={{ freeBytes: days * 1000, totalBytes: null, explanation: 'x' }} stored={0} growthPerDay={1000} />);
      expect(screen.getByTestId('fill-forecast').textContent).toBe(words);
      view.unmount();
    }
  });

  it('says so when nothing grows', () => {
    renderInConsole(<FillForecastBody space={{ freeBytes: GiB, totalBytes: null, explanation: 'x' }} stored={0} growthPerDay={0} />);
    expect(screen.getByTestId('fill-forecast').textContent).toBe('It does not grow at the moment.');
  });
});
