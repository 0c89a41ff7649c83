import { fireEvent, screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { renderInConsole } from '../testing/render';
import { COLOR_SCHEME_KEY } from '../theme';
import { ThemeToggle } from './ThemeToggle';

const scheme = () => document.documentElement.getAttribute('data-mantine-color-scheme');

describe('ThemeToggle', () => {
  it('follows the system until a choice is made, then switches and remembers it', () => {
    renderInConsole(<ThemeToggle />);
    // jsdom's matchMedia (testing/setup.ts) prefers light: the console starts light, nothing stored.
    expect(scheme()).toBe('light');
    expect(window.localStorage.getItem(COLOR_SCHEME_KEY)).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Switch to the dark theme' }));
    expect(scheme()).toBe('dark');
    expect(window.localStorage.getItem(COLOR_SCHEME_KEY)).toBe('dark');
    fireEvent.click(screen.getByRole('button', { name: 'Switch to the light theme' }));
    expect(scheme()).toBe('light');
    expect(window.localStorage.getItem(COLOR_SCHEME_KEY)).toBe('light');
  });

  it('starts from the remembered choice', () => {
    window.localStorage.setItem(COLOR_SCHEME_KEY, 'dark');
    renderInConsole(<ThemeToggle />);
    expect(scheme()).toBe('dark');
    expect(screen.getByRole('button', { name: 'Switch to the light theme' })).toBeTruthy();
  });
});
