'use strict'
// The client suites on a simulated uni object (see platforms.js), against the local stack.
// account.js (DELETE /me) and admin.js (wxadmin) join when those routes land.
require('./suite.js')('uni')
require('./ended.js')('uni')
require('./phone.js')('uni')
