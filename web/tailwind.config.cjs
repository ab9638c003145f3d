// Tailwind CSS (v3) configuration: the classes used in src/ are kept.
module.exports = {
  content: [__dirname + '/src/**/*.{html,js}'],
  theme: { extend: {} },
  plugins: [],
};
