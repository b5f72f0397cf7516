// ESLint (flat config): JavaScript's recommended rules and eslint-plugin-vue's
// "recommended" set (essential + strongly recommended + recommended) for the SPA,
// its tests and the build config. Run by `make test` (frontend/Makefile).
import js from '@eslint/js'
import pluginVue from 'eslint-plugin-vue'
import globals from 'globals'

export default [
  { ignores: ['node_modules/', 'dist/'] },
  js.configs.recommended,
  ...pluginVue.configs['flat/recommended'],
  {
    files: ['**/*.{js,vue}'],
    languageOptions: {
      ecmaVersion: 2024,
      sourceType: 'module',
      globals: { ...globals.browser },
    },
  },
  {
    // The templates' layout: attributes fill lines up to 120 columns and continue one
    // indent deeper, closing brackets stay on the last attribute's line, short content
    // stays on the tag's line. The plugin's defaults (one attribute per line, aligned)
    // would rewrite every template without finding anything.
    files: ['**/*.vue'],
    rules: {
      'vue/max-attributes-per-line': 'off',
      'vue/first-attribute-linebreak': 'off',
      'vue/html-indent': ['warn', 2, { attribute: 1, alignAttributesVertically: false }],
      'vue/html-closing-bracket-newline': ['warn', { singleline: 'never', multiline: 'never' }],
      'vue/singleline-html-element-content-newline': 'off',
      'vue/multiline-html-element-content-newline': 'off',
    },
  },
  {
    files: ['vite.config.js', 'eslint.config.js'],
    languageOptions: { globals: { ...globals.node } },
  },
]
