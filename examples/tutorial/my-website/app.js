// The tutorial's website: one express app that answers on $PORT (the image sets 8080).
const express = require('express');
const os = require('os');

const app = express();
const port = process.env.PORT || 8080;

app.get('/', (req, res) => {
  res.send(`<!doctype html>
<html>
  <head><title>My website</title></head>
  <body>
    <h1>Hello from my website!</h1>
    <p>Served by express ${require('express/package.json').version} on Node.js ${process.version},
       in a container named ${os.hostname()}.</p>
  </body>
</html>
`);
});

app.listen(port, () => console.log(`my-website listening on port ${port}`));
