/* Font Awesome icons are drawn by the theme CSS webfont; see docs/_templates/layout.html */
